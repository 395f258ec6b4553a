//! [`RegistrySync`]: container images present, by digest, in the DR registry.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::model::{Digest, ImageRef};

/// What a registry sync supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RegistryCapabilities {
    /// [`RegistrySync::copy`] works (otherwise parity checks only).
    pub copy: bool,
    /// Multi-arch indexes are checked and copied child by child.
    pub multi_arch: bool,
    /// Blobs are mounted across repositories instead of copied when possible.
    pub cross_repository_mount: bool,
}

with_setters!(RegistryCapabilities {
    set {
        with_copy => copy: bool,
        with_multi_arch => multi_arch: bool,
        with_cross_repository_mount => cross_repository_mount: bool,
    }
});

/// Whether the DR registry holds the image the primary registry holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum ImageParity {
    /// Present in the DR registry with the same digest.
    Present {
        /// The shared digest.
        digest: Digest,
    },
    /// Absent from the DR registry.
    Missing {
        /// The digest in the primary registry.
        primary: Digest,
    },
    /// Present under the same tag with another digest (the tag moved).
    DigestMismatch {
        /// The digest in the primary registry.
        primary: Digest,
        /// The digest in the DR registry.
        dr: Digest,
    },
}

impl ImageParity {
    /// Whether the DR registry can serve this image as the primary does.
    pub fn is_present(&self) -> bool {
        matches!(self, ImageParity::Present { .. })
    }
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CopyReport {
    /// The image's digest (identical on both sides).
    pub digest: Digest,
    /// Blobs transferred.
    pub blobs_copied: u32,
    /// Blobs the destination already had (or that were mounted).
    pub blobs_skipped: u32,
    /// Bytes transferred.
    pub bytes_copied: u64,
}

impl CopyReport {
    /// A copy that ended with `digest` in the DR registry, nothing transferred.
    pub fn new(digest: Digest) -> Self {
        Self { digest, blobs_copied: 0, blobs_skipped: 0, bytes_copied: 0 }
    }
}

with_setters!(CopyReport {
    set {
        with_blobs_copied => blobs_copied: u32,
        with_blobs_skipped => blobs_skipped: u32,
        with_bytes_copied => bytes_copied: u64,
    }
});

/// One image of a [`RegistrySync::copy_all`]: what its copy did, or why it failed.
#[derive(Debug)]
#[non_exhaustive]
pub struct ImageCopy {
    /// The image, in the primary registry, as it was given.
    pub image: ImageRef,
    /// Its copy: the digest the DR registry serves now and what was moved for it;
    /// or the error that left it out of parity.
    pub result: ProviderResult<CopyReport>,
}

impl ImageCopy {
    /// The outcome of copying `image`.
    pub fn new(image: ImageRef, result: ProviderResult<CopyReport>) -> Self {
        Self { image, result }
    }

    /// Whether an error of `kind` fails a whole [`RegistrySync::copy_all`] rather than one
    /// image: the credentials or the configuration are wrong for every image alike.
    pub fn fails_the_batch(kind: ErrorKind) -> bool {
        matches!(kind, ErrorKind::Unauthenticated | ErrorKind::PermissionDenied | ErrorKind::InvalidConfig)
    }
}

/// One side of a [`RegistryMapping`]: a registry host and an optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RegistryLocation {
    /// Host with optional port.
    pub host: String,
    /// Repository path prefix (without trailing `/`), if any.
    pub prefix: Option<String>,
}

/// Rewrites image references from the primary registry to the DR one.
///
/// Qovery deploys exactly the reference it is given: moving an environment to
/// the DR cluster does not change its registry, so the engine remaps every
/// image before deploying.
///
/// ```
/// use qovery_dr_core::provider::{RegistryLocation, RegistryMapping};
/// let m = RegistryMapping::new(
///     RegistryLocation { host: "rg.fr-par.scw.cloud".into(), prefix: Some("shop".into()) },
///     RegistryLocation { host: "1234.dkr.ecr.eu-central-1.amazonaws.com".into(), prefix: None },
/// );
/// let img = "rg.fr-par.scw.cloud/shop/api:v7".parse().unwrap();
/// assert_eq!(m.remap(&img).unwrap().to_string(), "1234.dkr.ecr.eu-central-1.amazonaws.com/api:v7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryMapping {
    /// The primary registry.
    pub from: RegistryLocation,
    /// The DR registry.
    pub to: RegistryLocation,
}

impl RegistryMapping {
    /// A mapping from one location to another.
    pub fn new(from: RegistryLocation, to: RegistryLocation) -> Self {
        Self { from, to }
    }

    /// The same image in the DR registry. `InvalidInput` if it is not in the
    /// primary registry (under the prefix).
    pub fn remap(&self, image: &ImageRef) -> ProviderResult<ImageRef> {
        let invalid = |why: String| ProviderError::new(ErrorKind::InvalidInput, "registry-mapping", "remap", why);
        if image.registry() != self.from.host {
            return Err(invalid(format!(
                "image {image} is not in the primary registry {}; only images from it can be remapped",
                self.from.host
            )));
        }
        let rest = match &self.from.prefix {
            Some(p) => {
                image.repository().strip_prefix(p.as_str()).and_then(|r| r.strip_prefix('/')).ok_or_else(|| {
                    invalid(format!("image {image} is not under the prefix {p}/ of the primary registry"))
                })?
            }
            None => image.repository(),
        };
        let repository = match &self.to.prefix {
            Some(p) => format!("{p}/{rest}"),
            None => rest.to_owned(),
        };
        image
            .with_registry(&self.to.host)
            .and_then(|i| i.with_repository(&repository))
            .map_err(|e| invalid(format!("remapped reference for {image} is invalid: {e}")))
    }
}

/// Keeps a DR registry in parity with the primary one: Docker/OCI registries, or your own.
#[async_trait]
pub trait RegistrySync: Send + Sync + Debug + 'static {
    /// A short name for errors and reports (e.g. `oci`).
    fn name(&self) -> &str;

    /// What this implementation supports.
    fn capabilities(&self) -> RegistryCapabilities;

    /// What each operation depends on (control or data plane, and where), for the
    /// static-stability lint ([`crate::stability`]). Default: nothing declared (the
    /// lint lists the steps using this provider as not checked).
    fn planes(&self) -> crate::stability::Planes {
        crate::stability::Planes::undeclared(self.name())
    }

    /// Compares an image of the primary registry with its remapped DR counterpart.
    ///
    /// # Contract
    /// Read-only. `NotFound` if the image is not in the primary registry;
    /// `InvalidInput` if the reference is not in the primary registry.
    async fn parity(&self, image: &ImageRef) -> ProviderResult<ImageParity>;

    /// Copies an image (manifests and blobs) to the DR registry, preserving its digest.
    ///
    /// # Contract
    /// Idempotent: copying a present image transfers nothing. `NotFound` if
    /// the image is not in the primary registry. Afterwards [`parity`](Self::parity)
    /// is `Present` with the primary's digest. `NotSupported` without the `copy` capability.
    async fn copy(&self, image: &ImageRef) -> ProviderResult<CopyReport>;

    /// Copies many images at once: the faster path where the implementation has one
    /// (a blob several images share is read and written once, transfers run
    /// side by side). The default copies the images one by one with [`copy`](Self::copy).
    ///
    /// # Contract
    /// One [`ImageCopy`] per image given, in the order given. Each `Ok` is what
    /// [`copy`](Self::copy) of that image alone would have returned, and afterwards
    /// [`parity`](Self::parity) of it is `Present` with that digest; a blob shared by
    /// several images is counted once, on the first image that needed it. An image that
    /// cannot be copied (`NotFound` in the primary registry, `InvalidInput` outside it, a
    /// transfer that failed after its retries) has its error in its entry and does not
    /// stop the others. The call itself fails only when no image could succeed:
    /// `Unauthenticated`, `PermissionDenied` or `InvalidConfig` (a refused credential or
    /// a wrong registry configuration refuses every image alike), or `NotSupported`
    /// without the `copy` capability. Idempotent, as [`copy`](Self::copy) is.
    async fn copy_all(&self, images: &[ImageRef]) -> ProviderResult<Vec<ImageCopy>> {
        let mut out = Vec::with_capacity(images.len());
        for image in images {
            match self.copy(image).await {
                Err(e) if ImageCopy::fails_the_batch(e.kind()) || e.kind() == ErrorKind::NotSupported => {
                    return Err(e);
                }
                result => out.push(ImageCopy::new(image.clone(), result)),
            }
        }
        Ok(out)
    }

    /// The image's reference in the DR registry.
    ///
    /// # Contract
    /// Pure (no I/O). `InvalidInput` if the image is not in the primary registry.
    /// Keeps repository path (after prefix mapping), tag and digest.
    fn remap(&self, image: &ImageRef) -> ProviderResult<ImageRef>;
}

registry_sync_methods!(emit_forwarding!(Arc));
registry_sync_methods!(emit_forwarding!(Box));

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(from_prefix: Option<&str>, to_prefix: Option<&str>) -> RegistryMapping {
        RegistryMapping::new(
            RegistryLocation { host: "a.io".into(), prefix: from_prefix.map(Into::into) },
            RegistryLocation { host: "b.io:5000".into(), prefix: to_prefix.map(Into::into) },
        )
    }

    #[test]
    fn remaps_hosts_and_prefixes_keeping_tag_and_digest() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let img: ImageRef = format!("a.io/team/api:v1@{d}").parse().unwrap();
        assert_eq!(mapping(None, None).remap(&img).unwrap().to_string(), format!("b.io:5000/team/api:v1@{d}"));
        assert_eq!(
            mapping(Some("team"), Some("dr/x")).remap(&img).unwrap().to_string(),
            format!("b.io:5000/dr/x/api:v1@{d}")
        );
    }

    #[test]
    fn refuses_foreign_images() {
        let img: ImageRef = "c.io/team/api:v1".parse().unwrap();
        let e = mapping(None, None).remap(&img).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let img: ImageRef = "a.io/teamx/api:v1".parse().unwrap();
        let e = mapping(Some("team"), None).remap(&img).unwrap_err();
        assert!(e.to_string().contains("prefix team/"), "{e}");
    }

    /// Copies by name: `bad` fails with the kind after `:` (e.g. `bad-transient`).
    #[derive(Debug, Default)]
    struct Scripted {
        copies: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl RegistrySync for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn capabilities(&self) -> RegistryCapabilities {
            RegistryCapabilities::default().with_copy(true)
        }
        async fn parity(&self, _: &ImageRef) -> ProviderResult<ImageParity> {
            unreachable!("copy_all's default does not check parity")
        }
        async fn copy(&self, image: &ImageRef) -> ProviderResult<CopyReport> {
            self.copies.lock().unwrap().push(image.repository().to_owned());
            let kind = match image.repository().strip_prefix("bad-") {
                Some("transient") => ErrorKind::Transient,
                Some("not-found") => ErrorKind::NotFound,
                Some("unauthenticated") => ErrorKind::Unauthenticated,
                Some(other) => panic!("unscripted {other}"),
                None => {
                    let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
                    return Ok(CopyReport::new(d.parse().unwrap()).with_bytes_copied(7));
                }
            };
            Err(ProviderError::new(kind, "scripted", "copy", format!("{image} failed")))
        }
        fn remap(&self, image: &ImageRef) -> ProviderResult<ImageRef> {
            Ok(image.clone())
        }
    }

    fn images(names: &[&str]) -> Vec<ImageRef> {
        names.iter().map(|n| format!("a.io/{n}:v1").parse().unwrap()).collect()
    }

    #[tokio::test]
    async fn copy_all_by_default_copies_each_image_in_order_and_keeps_going_past_one_failure() {
        let r = Scripted::default();
        let given = images(&["api", "bad-transient", "bad-not-found", "web"]);
        let out = r.copy_all(&given).await.unwrap();
        let got: Vec<_> =
            out.iter().map(|c| (c.image.repository(), c.result.as_ref().map_err(|e| e.kind()).is_ok())).collect();
        assert_eq!(got, [("api", true), ("bad-transient", false), ("bad-not-found", false), ("web", true)]);
        assert_eq!(out[1].result.as_ref().unwrap_err().kind(), ErrorKind::Transient);
        assert_eq!(out[2].result.as_ref().unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(out[3].result.as_ref().unwrap().bytes_copied, 7);
        assert_eq!(r.copies.lock().unwrap().len(), 4, "every image was tried");
    }

    #[tokio::test]
    async fn copy_all_by_default_stops_at_a_refused_credential() {
        let r = Scripted::default();
        let e = r.copy_all(&images(&["api", "bad-unauthenticated", "web"])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(*r.copies.lock().unwrap(), ["api", "bad-unauthenticated"], "web was not tried");
    }
}
