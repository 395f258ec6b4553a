//! Images: make each one the DR site will run present in the DR registry.

use std::sync::Arc;

use super::super::exec::Run;
use super::super::mode::RunMode;
use super::super::output::{StepOutput, SyncImageOutput};
use super::{StepResult, engine_error};
use crate::error::ErrorKind;
use crate::model::ImageRef;
use crate::provider::ImageParity;

pub(super) async fn sync_image(run: &Arc<Run>, image: &ImageRef) -> StepResult {
    let registry = if run.mode == RunMode::Failback {
        match &run.providers.registry_back {
            Some(r) => r,
            None => {
                return Ok(StepOutput::SyncImage(SyncImageOutput {
                    copied: false,
                    digest: None,
                    bytes: None,
                    skipped: Some("no registry sync configured for the failback direction".to_owned()),
                }));
            }
        }
    } else {
        &run.providers.registry
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
