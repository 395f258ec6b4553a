//! The Qovery provider: the conformance suite against the stateful fake,
//! every error path, no token in any log, and the official OpenAPI spec
//! through a spec-validating mock (Prism).
#![cfg(feature = "qovery")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "contract-tests")]
#[path = "common/prism.rs"]
mod prism;
#[cfg(feature = "contract-tests")]
#[path = "common/reaper.rs"]
mod reaper;

mod qovery {
    mod conformance;
    #[cfg(feature = "contract-tests")]
    mod contract;
    mod errors;
    mod secrets;
}
