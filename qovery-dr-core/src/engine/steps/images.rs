//! Images: make each one the DR site will run present in the DR registry.

use std::sync::Arc;

use super::super::exec::Run;
use super::super::mode::RunMode;
use super::super::output::{StepOutput, SyncImageOutput, SyncImagesOutput, SyncedImage};
use super::{StepError, StepResult, engine_error};
use crate::error::{ErrorKind, ProviderError};
use crate::model::ImageRef;
use crate::provider::{ImageParity, RegistrySync};

const NO_SYNC_BACK: &str = "no registry sync configured for the failback direction";

/// The sync towards the site the run moves to, if there is one.
fn target_registry(run: &Run) -> Option<&Arc<dyn RegistrySync>> {
    if run.mode == RunMode::Failback { run.providers.registry_back.as_ref() } else { Some(&run.providers.registry) }
}

/// The images stage: every image read side by side; those not in parity copied in one
/// batch, then each checked again. An image already in parity is never written.
pub(super) async fn sync_images(run: &Arc<Run>, id: &str, images: &[ImageRef]) -> StepResult {
    let Some(registry) = target_registry(run) else {
        return Ok(StepOutput::SyncImages(SyncImagesOutput { images: Vec::new(), skipped: Some(NO_SYNC_BACK.into()) }));
    };
    let before = parities(run, registry, images).await?;
    let missing: Vec<ImageRef> =
        images.iter().zip(&before).filter(|(_, p)| !p.is_present()).map(|(i, _)| i.clone()).collect();
    let mut copied = std::collections::BTreeMap::new();
    if !missing.is_empty() {
        let copies = registry.copy_all(&missing).await?;
        let given: Vec<&ImageRef> = copies.iter().map(|c| &c.image).collect();
        if given != missing.iter().collect::<Vec<_>>() {
            return Err(engine_error(
                ErrorKind::Transient,
                id,
                format!(
                    "the registry sync {} answered a batch of {} images with {} entries or in another order; \
                     it breaks the copy_all contract (one entry per image, in order)",
                    registry.name(),
                    missing.len(),
                    copies.len()
                ),
            ));
        }
        let mut failed = Vec::new();
        for c in copies {
            match c.result {
                Ok(report) => {
                    copied.insert(c.image, report);
                }
                Err(e) => failed.push((c.image, e)),
            }
        }
        if !failed.is_empty() {
            return Err(partial_failure(images.len(), failed));
        }
    }
    let mut out = Vec::with_capacity(images.len());
    let after = parities(run, registry, &missing).await?;
    let mut after = missing.iter().zip(after).collect::<std::collections::BTreeMap<_, _>>();
    for (image, parity) in images.iter().zip(before) {
        let Some(report) = copied.get(image) else {
            if let ImageParity::Present { digest } = parity {
                out.push(SyncedImage { image: image.clone(), copied: false, digest, bytes: None });
            }
            continue;
        };
        match after.remove(image) {
            Some(ImageParity::Present { digest }) if digest == report.digest => {
                out.push(SyncedImage { image: image.clone(), copied: true, digest, bytes: Some(report.bytes_copied) })
            }
            other => {
                return Err(engine_error(
                    ErrorKind::Transient,
                    id,
                    format!("after copying {image} (digest {}), the DR registry shows {other:?}", report.digest),
                ));
            }
        }
    }
    Ok(StepOutput::SyncImages(SyncImagesOutput { images: out, skipped: None }))
}

/// The parity of each image, read side by side (at most the engine's concurrency at once).
async fn parities(
    run: &Arc<Run>,
    registry: &Arc<dyn RegistrySync>,
    images: &[ImageRef],
) -> Result<Vec<ImageParity>, StepError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(run.parts.options.max_concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (index, image) in images.iter().enumerate() {
        let (registry, image, permits) = (Arc::clone(registry), image.clone(), Arc::clone(&permits));
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, registry.parity(&image).await)
        });
    }
    let mut out: Vec<Option<ImageParity>> = vec![None; images.len()];
    while let Some(joined) = set.join_next().await {
        let (index, parity) = joined.map_err(|e| {
            engine_error(ErrorKind::Transient, "registry.parity", format!("a parity check ended abnormally: {e}"))
        })?;
        if let Some(slot) = out.get_mut(index) {
            *slot = Some(parity?);
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// The error of a batch some images of which failed: every failed image named, with the
/// kind (and retry hints) of the first failure no retry can fix, else of the first failure.
fn partial_failure(total: usize, failed: Vec<(ImageRef, ProviderError)>) -> StepError {
    let count = failed.len();
    let list =
        failed.iter().map(|(i, e)| format!("{i}: {} ({})", e.message(), e.kind())).collect::<Vec<_>>().join("; ");
    let pick = failed.iter().position(|(_, e)| !e.is_retryable()).unwrap_or(0);
    let Some((_, first)) = failed.into_iter().nth(pick) else {
        return engine_error(ErrorKind::Transient, "sync-images", "a batch copy failed".into());
    };
    let mut e = ProviderError::new(
        first.kind(),
        first.provider().to_owned(),
        first.operation().to_owned(),
        format!("{count} of {total} images are not in the DR registry ({} are): {list}", total - count),
    );
    if let Some(after) = first.retry_after() {
        e = e.with_retry_after(after);
    }
    if let Some(attempts) = first.retries_exhausted() {
        e = e.with_retries_exhausted(attempts);
    }
    StepError::Provider(e.with_source(first))
}

/// One image ([`StepKind::SyncImage`](super::super::runbook::StepKind::SyncImage), runbooks of earlier versions).
pub(super) async fn sync_image(run: &Arc<Run>, image: &ImageRef) -> StepResult {
    let Some(registry) = target_registry(run) else {
        return Ok(StepOutput::SyncImage(SyncImageOutput {
            copied: false,
            digest: None,
            bytes: None,
            skipped: Some(NO_SYNC_BACK.to_owned()),
        }));
    };
    match registry.parity(image).await? {
        ImageParity::Present { digest } => Ok(StepOutput::SyncImage(SyncImageOutput {
            copied: false,
            digest: Some(digest),
            bytes: None,
            skipped: None,
        })),
        ImageParity::Missing { .. } | ImageParity::DigestMismatch { .. } => {
            let report = registry.copy(image).await?;
            match registry.parity(image).await? {
                ImageParity::Present { digest } if digest == report.digest => {
                    Ok(StepOutput::SyncImage(SyncImageOutput {
                        copied: true,
                        digest: Some(digest),
                        bytes: Some(report.bytes_copied),
                        skipped: None,
                    }))
                }
                other => Err(engine_error(
                    ErrorKind::Transient,
                    "sync-image",
                    format!("after copying {image}, the DR registry shows {other:?}"),
                )),
            }
        }
    }
}
