//! Layers: behaviour wrapped around any provider without touching it, in the manner of
//! `tower` or OpenDAL's layers. A [`Layer`] sees every async call of a provider (which
//! one, and whether it mutates) and decides how to run it: refuse it
//! ([`ReadOnlyLayer`]), repeat it ([`RetryLayer`]), bound it ([`TimeoutLayer`]), or, in
//! the testkit, inject faults into it and record it. [`Layered`] applies a layer to
//! any of the four provider traits; its impls are generated from the same method
//! tables as the `Arc`/`Box` forwarding, so a layer never misses a method.
//!
//! ```
//! use std::sync::Arc;
//! use qovery_dr_core::provider::{ClusterProvider, Layered, ReadOnlyLayer, RetryLayer};
//! use qovery_dr_core::resilience::RetryConfig;
//! use qovery_dr_core::{EnvironmentId, ErrorKind};
//! use qovery_dr_testkit::memory::InMemoryCluster;
//! use qovery_dr_testkit::World;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let world = World::new();
//! // Retries outside, the read-only guard inside: a refused write is not retried.
//! let guarded = Layered::new(InMemoryCluster::new(&world), ReadOnlyLayer);
//! let cluster = Layered::new(guarded, RetryLayer::new(RetryConfig::default()));
//! let e = cluster.deploy_environment(&EnvironmentId::new("env-dr")).await.unwrap_err();
//! assert_eq!(e.kind(), ErrorKind::InvalidInput);
//! assert!(world.recorder().calls().is_empty(), "the write never reached the provider");
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::model::{
    ChangeId, ClusterId, DatabaseId, DeploymentId, DnsRecordId, DnsTarget, EnvironmentId, FailoverEpoch, ImageRef, Lsn,
    ProjectId, ServiceId, ServiceScale,
};
use crate::provider::*;
use crate::resilience::{RetryConfig, retry};

/// The future of one attempt of a provider call, as a layer receives it.
pub type CallFuture<'a, T> = Pin<Box<dyn Future<Output = ProviderResult<T>> + Send + 'a>>;

/// What a layer calls to make one attempt of the wrapped call (the next layer inside,
/// or the provider).
pub type Next<'a, T> = dyn Fn() -> CallFuture<'a, T> + Send + Sync + 'a;

/// One call of a provider method, as a [`Layer`] sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallInfo<'a> {
    /// The provider's [`name`](ClusterProvider::name).
    pub provider: &'a str,
    /// `family.method`: `cluster.deploy_environment`, `dns.switch`,
    /// `replication.promote_standby`, `registry.copy`…
    pub operation: &'static str,
    /// Whether the method changes anything (a write). A layer must treat a write whose
    /// answer was lost as possibly applied.
    pub mutating: bool,
    /// The arguments, for records and logs (their `Debug`, which redacts secrets).
    pub args: &'a (dyn fmt::Debug + Sync),
}

impl<'a> CallInfo<'a> {
    /// A call description without arguments (for layers tested on their own).
    pub fn new(provider: &'a str, operation: &'static str, mutating: bool) -> Self {
        Self { provider, operation, mutating, args: &() }
    }

    /// The same call with its arguments.
    pub fn with_args(self, args: &'a (dyn fmt::Debug + Sync)) -> Self {
        Self { args, ..self }
    }

    /// The method's name: `operation` after the family.
    pub fn method(&self) -> &'static str {
        self.operation.split_once('.').map_or(self.operation, |(_, m)| m)
    }
}

/// Behaviour around every async call of a provider.
///
/// # Contract
/// `around` runs the call by calling `next` (each call of `next` is one fresh attempt
/// of the provider method), zero times (refusing it), once, or more (retrying). It
/// must not call `next` again after a [`CallInfo::mutating`] attempt that may have been
/// applied, unless the error says it was not ([`ErrorKind::RateLimited`]). Layers nest:
/// `Layered::new(Layered::new(p, inner), outer)`, or a tuple `(outer, inner)`.
pub trait Layer: Send + Sync + fmt::Debug {
    /// Runs one call.
    fn around<'a, T: Send + 'a>(&'a self, call: &'a CallInfo<'a>, next: &'a Next<'a, T>) -> CallFuture<'a, T>;
}

impl<L: Layer> Layer for Arc<L> {
    fn around<'a, T: Send + 'a>(&'a self, call: &'a CallInfo<'a>, next: &'a Next<'a, T>) -> CallFuture<'a, T> {
        (**self).around(call, next)
    }
}

/// Two layers: the first outside, the second inside.
impl<A: Layer, B: Layer> Layer for (A, B) {
    fn around<'a, T: Send + 'a>(&'a self, call: &'a CallInfo<'a>, next: &'a Next<'a, T>) -> CallFuture<'a, T> {
        Box::pin(async move {
            let inner = || self.1.around(call, next);
            self.0.around(call, &inner).await
        })
    }
}

/// A provider with a layer around it. Implements whichever of the four provider traits
/// `P` implements.
#[derive(Debug, Clone)]
pub struct Layered<P, L> {
    inner: P,
    layer: L,
}

impl<P, L: Layer> Layered<P, L> {
    /// `inner` with `layer` around it.
    pub fn new(inner: P, layer: L) -> Self {
        Self { inner, layer }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }
}

cluster_provider_methods!(emit_layered!());
dns_switcher_methods!(emit_layered!());
replication_manager_methods!(emit_layered!());
registry_sync_methods!(emit_layered!());

fn failed<'a, T: Send + 'a>(error: ProviderError) -> CallFuture<'a, T> {
    Box::pin(std::future::ready(Err(error)))
}

/// Refuses every mutating call with `InvalidInput` without reaching the provider: the
/// engine's dry run goes through it, so no provider can change anything in a dry run,
/// whatever its own code does.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnlyLayer;

impl Layer for ReadOnlyLayer {
    fn around<'a, T: Send + 'a>(&'a self, call: &'a CallInfo<'a>, next: &'a Next<'a, T>) -> CallFuture<'a, T> {
        if call.mutating {
            return failed(ProviderError::new(
                ErrorKind::InvalidInput,
                call.provider,
                call.method(),
                "refused by the engine's dry-run guard: no mutating call in a dry run",
            ));
        }
        next()
    }
}

/// A provider behind the dry-run guard.
pub type ReadOnly<P> = Layered<P, ReadOnlyLayer>;

/// Retries failed calls through [`resilience::retry`](crate::resilience::retry): reads
/// on every retryable error, writes only when the error says the request was not
/// applied (`RateLimited`). For tools that call providers directly; the engine retries
/// steps itself, and an error this layer exhausted is not retried again there.
#[derive(Debug, Clone, Copy)]
pub struct RetryLayer {
    config: RetryConfig,
}

impl RetryLayer {
    /// Retries as `config` says.
    pub fn new(config: RetryConfig) -> Self {
        Self { config }
    }
}

impl Layer for RetryLayer {
    fn around<'a, T: Send + 'a>(&'a self, call: &'a CallInfo<'a>, next: &'a Next<'a, T>) -> CallFuture<'a, T> {
        Box::pin(retry(&self.config, |e| !call.mutating || e.kind() == ErrorKind::RateLimited, move |_| next()))
    }
}

/// Bounds every call: a read with no answer in time fails with `Timeout` (retryable); a
/// write with no answer in time fails with `Indeterminate`, since it may have been
/// applied (the engine reconciles before repeating it).
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    /// Calls answer within `limit`.
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl Layer for TimeoutLayer {
    fn around<'a, T: Send + 'a>(&'a self, call: &'a CallInfo<'a>, next: &'a Next<'a, T>) -> CallFuture<'a, T> {
        Box::pin(async move {
            match tokio::time::timeout(self.limit, next()).await {
                Ok(result) => result,
                Err(_) => {
                    let waited = humantime::format_duration(self.limit);
                    Err(if call.mutating {
                        ProviderError::new(
                            ErrorKind::Indeterminate,
                            call.provider,
                            call.method(),
                            format!("no answer within {waited}: the change may have been applied"),
                        )
                    } else {
                        ProviderError::new(
                            ErrorKind::Timeout,
                            call.provider,
                            call.method(),
                            format!("no answer within {waited}"),
                        )
                    })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(mutating: bool) -> CallInfo<'static> {
        CallInfo::new("p", "cluster.deploy_environment", mutating)
    }

    /// Runs `layer` over attempts answering `outcomes` in turn (`None`: success with 7).
    async fn run<L: Layer>(
        layer: &L,
        c: &CallInfo<'_>,
        outcomes: &[Option<ErrorKind>],
    ) -> (ProviderResult<u32>, usize) {
        let n = std::sync::atomic::AtomicUsize::new(0);
        let next = || -> CallFuture<'_, u32> {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let r = match outcomes[i.min(outcomes.len() - 1)] {
                Some(kind) => Err(ProviderError::new(kind, "p", "deploy_environment", "injected")),
                None => Ok(7),
            };
            Box::pin(async move { r })
        };
        let r = layer.around(c, &next).await;
        (r, n.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn e(kind: ErrorKind) -> Option<ErrorKind> {
        Some(kind)
    }

    const OK: Option<ErrorKind> = None;

    #[tokio::test(start_paused = true)]
    async fn read_only_refuses_writes_without_calling_and_passes_reads() {
        let (r, n) = run(&ReadOnlyLayer, &call(true), &[OK]).await;
        assert_eq!((r.unwrap_err().kind(), n), (ErrorKind::InvalidInput, 0));
        let (r, n) = run(&ReadOnlyLayer, &call(false), &[OK]).await;
        assert_eq!((r.unwrap(), n), (7, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_repeats_reads_but_a_write_only_when_it_was_not_applied() {
        let layer = RetryLayer::new(RetryConfig::default());
        let (r, n) = run(&layer, &call(false), &[e(ErrorKind::Transient), e(ErrorKind::Timeout), OK]).await;
        assert_eq!((r.unwrap(), n), (7, 3));
        let (r, n) = run(&layer, &call(true), &[e(ErrorKind::Transient), OK]).await;
        assert_eq!((r.unwrap_err().kind(), n), (ErrorKind::Transient, 1), "a write that may be applied");
        let (r, n) = run(&layer, &call(true), &[e(ErrorKind::RateLimited), OK]).await;
        assert_eq!((r.unwrap(), n), (7, 2), "throttled: not applied, repeated");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_makes_a_hung_read_a_timeout_and_a_hung_write_indeterminate() {
        let layer = TimeoutLayer::new(Duration::from_secs(5));
        let hang = || -> CallFuture<'_, u32> { Box::pin(std::future::pending()) };
        let (read, write) = (call(false), call(true));
        let r = layer.around(&read, &hang).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
        let r = layer.around(&write, &hang).await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Indeterminate);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pair_runs_the_first_layer_outside() {
        // Read-only inside retries: the refusal is not retryable, one pass, no call.
        let (r, n) = run(&(RetryLayer::new(RetryConfig::default()), ReadOnlyLayer), &call(true), &[OK]).await;
        assert_eq!((r.unwrap_err().kind(), n), (ErrorKind::InvalidInput, 0));
    }

    #[test]
    fn a_call_names_its_method() {
        assert_eq!(call(true).method(), "deploy_environment");
    }
}
