//! Conformance checks for [`RegistrySync`].

use qovery_dr_core::Digest;
use qovery_dr_core::provider::{ImageParity, RegistrySync};
use qovery_dr_core::{ErrorKind, ImageRef};

use super::assert_kind;

/// What the registry checks need.
#[derive(Debug, Clone)]
pub struct RegistryFixture<P> {
    /// The implementation under test.
    pub provider: P,
    /// In the primary registry and in the DR registry with the same digest.
    pub present: ImageRef,
    /// In the primary registry, not in the DR registry.
    pub missing: ImageRef,
    /// The digest of `missing` in the primary registry (as pushed there).
    pub missing_digest: Digest,
    /// A reference in the primary registry that does not exist.
    pub absent: ImageRef,
    /// An image in a registry that is not the primary one.
    pub foreign: ImageRef,
}

/// An image on both sides is `Present` with one digest.
pub async fn present_image_is_present<P: RegistrySync>(f: &RegistryFixture<P>) {
    match f.provider.parity(&f.present).await.expect("parity") {
        ImageParity::Present { .. } => {}
        other => panic!("expected {} present, got {other:?}", f.present),
    }
}

/// An image absent from the DR registry is `Missing`, with the primary's digest.
pub async fn missing_image_is_missing<P: RegistrySync>(f: &RegistryFixture<P>) {
    match f.provider.parity(&f.missing).await.expect("parity") {
        ImageParity::Missing { primary } => {
            assert_eq!(primary, f.missing_digest, "{} is missing with the primary's digest", f.missing)
        }
        other => panic!("expected {} missing, got {other:?}", f.missing),
    }
}

/// Copy makes the image present with the primary's digest.
pub async fn copy_preserves_the_digest<P: RegistrySync>(f: &RegistryFixture<P>) {
    if !f.provider.capabilities().copy {
        assert_kind(f.provider.copy(&f.missing).await, ErrorKind::NotSupported, "copy without capability");
        return;
    }
    let ImageParity::Missing { primary } = f.provider.parity(&f.missing).await.expect("parity") else {
        panic!("fixture's missing image is not missing");
    };
    let report = f.provider.copy(&f.missing).await.expect("copy");
    assert_eq!(report.digest, primary, "the copy has the primary's digest");
    assert_eq!(f.provider.parity(&f.missing).await.expect("parity"), ImageParity::Present { digest: primary });
}

/// Copying a present image transfers nothing.
pub async fn copy_is_idempotent<P: RegistrySync>(f: &RegistryFixture<P>) {
    if !f.provider.capabilities().copy {
        return assert_kind(f.provider.copy(&f.present).await, ErrorKind::NotSupported, "copy without capability");
    }
    let first = f.provider.copy(&f.missing).await.expect("copy");
    let again = f.provider.copy(&f.missing).await.expect("copy again");
    assert_eq!(again.digest, first.digest);
    assert_eq!(again.bytes_copied, 0, "a second copy transfers nothing");
    let present = f.provider.copy(&f.present).await.expect("copy of a present image");
    assert_eq!(present.bytes_copied, 0);
}

/// A batch answers one entry per image, in the order given: the missing image copied with
/// the primary's digest, the absent one `NotFound` without stopping the others, the
/// present one moving nothing.
pub async fn copy_all_answers_each_image_in_order<P: RegistrySync>(f: &RegistryFixture<P>) {
    let given = [f.missing.clone(), f.absent.clone(), f.present.clone()];
    if !f.provider.capabilities().copy {
        return assert_kind(f.provider.copy_all(&given).await, ErrorKind::NotSupported, "copy_all without capability");
    }
    let out = f.provider.copy_all(&given).await.expect("copy_all: one absent image must not fail the whole batch");
    let order: Vec<&ImageRef> = out.iter().map(|c| &c.image).collect();
    assert_eq!(order, given.iter().collect::<Vec<_>>(), "one entry per image, in the order given");
    let missing = out[0].result.as_ref().unwrap_or_else(|e| panic!("copy_all({}): {e}", f.missing));
    assert_eq!(missing.digest, f.missing_digest, "the copy has the primary's digest");
    assert_eq!(
        f.provider.parity(&f.missing).await.expect("parity"),
        ImageParity::Present { digest: f.missing_digest.clone() },
        "after the batch, the copied image is present"
    );
    match &out[1].result {
        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "copy_all({}): {e}", f.absent),
        Ok(r) => panic!("copy_all({}) succeeded for an image the primary lacks: {r:?}", f.absent),
    }
    let present = out[2].result.as_ref().unwrap_or_else(|e| panic!("copy_all({}): {e}", f.present));
    assert_eq!(present.bytes_copied, 0, "a present image moves nothing");
    let again = f.provider.copy_all(std::slice::from_ref(&f.missing)).await.expect("copy_all again");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].result.as_ref().map(|r| r.bytes_copied).ok(), Some(0), "a second batch moves nothing");
}

/// An image that is not in the primary registry is `NotFound`.
pub async fn absent_image_is_not_found<P: RegistrySync>(f: &RegistryFixture<P>) {
    assert_kind(f.provider.parity(&f.absent).await, ErrorKind::NotFound, "parity(absent)");
    if f.provider.capabilities().copy {
        assert_kind(f.provider.copy(&f.absent).await, ErrorKind::NotFound, "copy(absent)");
    }
}

/// Remap moves the registry and keeps tag and digest; a foreign image is `InvalidInput`.
pub async fn remap_moves_only_the_registry<P: RegistrySync>(f: &RegistryFixture<P>) {
    let pinned = match f.provider.parity(&f.present).await.expect("parity") {
        ImageParity::Present { digest } => f.present.with_digest(digest),
        other => panic!("fixture's present image is {other:?}"),
    };
    let dr = f.provider.remap(&pinned).expect("remap");
    assert_ne!(dr.registry(), pinned.registry(), "the DR reference is in another registry");
    assert_eq!(dr.tag(), pinned.tag());
    assert_eq!(dr.digest(), pinned.digest());
    assert_kind(f.provider.remap(&f.foreign), ErrorKind::InvalidInput, "remap(foreign)");
    assert_kind(f.provider.parity(&f.foreign).await, ErrorKind::InvalidInput, "parity(foreign)");
}

/// Expands to one `#[tokio::test]` per registry check, in a module named `$name`.
/// `$setup` is an expression giving a future of a fresh [`RegistryFixture`].
#[macro_export]
macro_rules! registry_sync_conformance {
    ($name:ident, $setup:expr) => {
        $crate::registry_sync_conformance!(@inner $name, $setup, #[::tokio::test]);
    };
    ($name:ident, $setup:expr, start_paused) => {
        $crate::registry_sync_conformance!(@inner $name, $setup, #[::tokio::test(start_paused = true)]);
    };
    (@inner $name:ident, $setup:expr, #[$test:meta]) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_tests!(registry, $setup, #[$test], [
                present_image_is_present,
                missing_image_is_missing,
                copy_preserves_the_digest,
                copy_is_idempotent,
                copy_all_answers_each_image_in_order,
                absent_image_is_not_found,
                remap_moves_only_the_registry,
            ]);
        }
    };
}
