//! In-memory [`RegistrySync`].

use qovery_dr_core::provider::{CopyReport, ImageParity, RegistryCapabilities, RegistryMapping, RegistrySync};
use qovery_dr_core::{Digest, ErrorKind, ImageRef, ProviderError, ProviderResult, async_trait};

use crate::world::state::State;
use crate::world::{PROVIDER, World};

/// A [`RegistrySync`] over a [`World`]'s registries, remapping with a [`RegistryMapping`].
#[derive(Debug, Clone)]
pub struct InMemoryRegistry {
    world: World,
    mapping: RegistryMapping,
    capabilities: RegistryCapabilities,
}

impl InMemoryRegistry {
    /// A sync from `mapping.from` to `mapping.to` with every capability.
    pub fn new(world: &World, mapping: RegistryMapping) -> Self {
        let capabilities =
            RegistryCapabilities::default().with_copy(true).with_multi_arch(true).with_cross_repository_mount(true);
        Self { world: world.clone(), mapping, capabilities }
    }

    /// The same sync declaring other capabilities.
    pub fn with_capabilities(mut self, capabilities: RegistryCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

fn err(kind: ErrorKind, op: &str, msg: String) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

fn lookup(s: &State, image: &ImageRef) -> Option<Digest> {
    let reg = s.registries.get(image.registry())?;
    match image.digest() {
        Some(d) => reg.tags.iter().any(|((repo, _), v)| repo == image.repository() && v == d).then(|| d.clone()),
        None => reg.tags.get(&(image.repository().to_owned(), image.reference())).cloned(),
    }
}

impl InMemoryRegistry {
    fn source(&self, s: &State, image: &ImageRef, op: &str) -> ProviderResult<(Digest, ImageRef)> {
        let dr = self.mapping.remap(image).map_err(|e| err(ErrorKind::InvalidInput, op, e.message().to_owned()))?;
        let digest = lookup(s, image)
            .ok_or_else(|| err(ErrorKind::NotFound, op, format!("image {image} is not in the primary registry")))?;
        Ok((digest, dr))
    }
}

#[async_trait]
impl RegistrySync for InMemoryRegistry {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> RegistryCapabilities {
        self.capabilities
    }

    async fn parity(&self, image: &ImageRef) -> ProviderResult<ImageParity> {
        const OP: &str = "registry.parity";
        self.world
            .call(OP, false, image.to_string(), |s, _| {
                let (primary, dr) = self.source(s, image, OP)?;
                Ok(match lookup(s, &dr) {
                    None => ImageParity::Missing { primary },
                    Some(d) if d == primary => ImageParity::Present { digest: d },
                    Some(d) => ImageParity::DigestMismatch { primary, dr: d },
                })
            })
            .await
    }

    async fn copy(&self, image: &ImageRef) -> ProviderResult<CopyReport> {
        const OP: &str = "registry.copy";
        if !self.capabilities.copy {
            return Err(err(
                ErrorKind::NotSupported,
                OP,
                "copy is disabled in this provider's capabilities".to_owned(),
            ));
        }
        self.world
            .call(OP, true, image.to_string(), |s, ctx| {
                let (digest, dr) = self.source(s, image, OP)?;
                if lookup(s, &dr).as_ref() == Some(&digest) {
                    ctx.no_change();
                    return Ok(CopyReport::new(digest).with_blobs_copied(0).with_blobs_skipped(3).with_bytes_copied(0));
                }
                let size = s.registries.get(image.registry()).and_then(|r| r.sizes.get(&digest)).copied().unwrap_or(0);
                let reg = s.registries.entry(dr.registry().to_owned()).or_default();
                let had_blobs = reg.sizes.contains_key(&digest);
                reg.tags.insert((dr.repository().to_owned(), image.reference()), digest.clone());
                reg.sizes.insert(digest.clone(), size);
                Ok(if had_blobs {
                    CopyReport::new(digest).with_blobs_copied(0).with_blobs_skipped(3).with_bytes_copied(0)
                } else {
                    CopyReport::new(digest).with_blobs_copied(3).with_blobs_skipped(0).with_bytes_copied(size)
                })
            })
            .await
    }

    fn remap(&self, image: &ImageRef) -> ProviderResult<ImageRef> {
        self.mapping.remap(image)
    }
}
