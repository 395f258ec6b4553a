//! The domain model: identifiers, objectives, tiers, sites, images, LSNs, secrets, time.

mod activity;
mod epoch;
mod ids;
mod image;
mod lsn;
mod objectives;
mod secret;
mod site;
mod time;

pub use activity::Activity;
pub use epoch::{EPOCH_VARIABLE, FailoverEpoch};
pub use ids::{
    ChangeId, ClusterId, DatabaseId, DeploymentId, DnsRecordId, DnsTarget, EnvironmentId, ProjectId, ServiceId,
};
pub use image::{DEFAULT_REGISTRY, Digest, ImageRef, ImageRefError};
pub use lsn::{Lsn, LsnParseError};
pub use objectives::{DurationRange, Objectives, ResilienceLevel, Tier};
pub use secret::{SecretError, SecretRef, SecretString, TerraformSecret};
pub use site::{
    DatabaseEndpoint, DatabaseServer, RdsDatabase, RegistryEndpoint, ServiceScale, Site, SiteRole, SiteScale,
};
pub use time::{Timestamp, duration_serde};
