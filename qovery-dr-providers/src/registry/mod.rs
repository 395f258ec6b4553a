//! OCI registries: image parity by digest, streaming copies, remapping.
//!
//! Built on reqwest rather than `oci-client`: the copy must stream blobs from
//! one registry into the other without holding a layer in memory, verify
//! digests on the way, mount across repositories, and deduplicate blobs across
//! all images of one sync — a thin layer over the distribution API does that
//! with less code than adapting a pull/push client.
//!
//! - Manifests are fetched with an `Accept` header listing the OCI index, OCI
//!   manifest, Docker manifest list and Docker v2 manifest types, and their
//!   `Docker-Content-Digest` is checked against the sha256 of the bytes.
//! - Blobs the destination has are skipped (HEAD); within one registry they are
//!   mounted (`POST …/blobs/uploads/?mount=&from=`); otherwise streamed in one
//!   monolithic upload (POST, then PUT `?digest=` with the body), concurrently,
//!   hashed while streaming: the registry commits a blob only if its bytes match
//!   the digest, and a corrupt source blob is reported as such. Layers are never
//!   re-compressed: digests are preserved. Manifests are pushed last.
//! - Auth: anonymous, basic, a static bearer token, the bearer token flow
//!   (`WWW-Authenticate` realm/service/scope) used by Scaleway, GHCR and Docker
//!   Hub, and (feature `ecr`) Amazon ECR tokens from `GetAuthorizationToken`,
//!   refreshed before they expire.

mod client;
#[cfg(feature = "ecr")]
mod ecr;
mod listing;
mod sync;

pub use client::{MANIFEST_ACCEPT, PROVIDER, RegistryAuth};
#[cfg(feature = "ecr")]
pub use ecr::EcrCredentials;
pub use sync::{DEFAULT_CONCURRENCY, ImageSynced, OciRegistrySync, SyncReport};

#[cfg(fuzzing)]
pub(crate) use sync::fuzz_manifest;
