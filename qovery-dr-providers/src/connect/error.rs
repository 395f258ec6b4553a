//! Why a plan could not be turned into providers. Every variant names the plan
//! field (or secret reference) at fault and never a secret's value.

use qovery_dr_core::engine::LockError;
use qovery_dr_core::{ProviderError, SecretError};

/// A plan that cannot be connected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The plan lacks something a live run needs.
    #[error("{path}: {what}")]
    Missing {
        /// The plan field.
        path: String,
        /// What to add, with an example.
        what: String,
    },
    /// The plan needs a provider this build does not include.
    #[error(
        "{path}: needs the {provider} provider, which this build does not include: enable the cargo feature `{feature}` of qovery-dr-providers"
    )]
    FeatureMissing {
        /// The plan field.
        path: String,
        /// The provider.
        provider: &'static str,
        /// The cargo feature to enable.
        feature: &'static str,
    },
    /// A secret reference did not resolve (the value is never shown).
    #[error("{path}: {source}")]
    Secret {
        /// The plan field holding the reference.
        path: String,
        /// Why it did not resolve.
        #[source]
        source: SecretError,
    },
    /// A secret resolved to a value of the wrong shape (the value is never shown).
    #[error("{path}: the secret {reference} {problem}")]
    SecretShape {
        /// The plan field.
        path: String,
        /// The reference (`env:NAME`, `file:PATH`).
        reference: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A provider could not be built from the plan's values.
    #[error("{path}: {source}")]
    Provider {
        /// The plan field.
        path: String,
        /// The provider's error.
        #[source]
        source: Box<ProviderError>,
    },
    /// The lock and journal backend could not be reached.
    #[error("state.url: {source}")]
    State {
        /// The lock's error.
        #[source]
        source: Box<LockError>,
    },
}

impl ConnectError {
    /// The plan field the error is about.
    pub fn path(&self) -> &str {
        match self {
            ConnectError::Missing { path, .. }
            | ConnectError::FeatureMissing { path, .. }
            | ConnectError::Secret { path, .. }
            | ConnectError::SecretShape { path, .. }
            | ConnectError::Provider { path, .. } => path,
            ConnectError::State { .. } => "state.url",
        }
    }
}
