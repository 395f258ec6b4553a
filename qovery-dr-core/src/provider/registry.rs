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
}
