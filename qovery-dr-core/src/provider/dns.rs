//! [`DnsSwitcher`]: moves client traffic from one site to the other.

use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::model::{ChangeId, DnsRecordId, DnsTarget, FailoverEpoch};

/// What a DNS switcher can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DnsCapabilities {
    /// [`SwitchStrategy::RecordSwap`].
    pub record_swap: bool,
    /// [`SwitchStrategy::FailoverRouting`].
    pub failover_routing: bool,
    /// [`SwitchStrategy::WeightedShift`].
    pub weighted: bool,
    /// [`SwitchStrategy::LoadBalancerPool`].
    pub load_balancer_pools: bool,
    /// [`DnsSwitcher::target_health`] reports the provider's own health checks
    /// (otherwise it answers `Unknown`).
    pub health_checks: bool,
}

with_setters!(DnsCapabilities {
    set {
        with_record_swap => record_swap: bool,
        with_failover_routing => failover_routing: bool,
        with_weighted => weighted: bool,
        with_load_balancer_pools => load_balancer_pools: bool,
        with_health_checks => health_checks: bool,
    }
});

impl DnsCapabilities {
    /// Every capability.
    pub fn all() -> Self {
        Self {
            record_swap: true,
            failover_routing: true,
            weighted: true,
            load_balancer_pools: true,
            health_checks: true,
        }
    }

    /// Whether `strategy` is supported.
    pub fn supports(&self, strategy: SwitchStrategy) -> bool {
        match strategy {
            SwitchStrategy::RecordSwap => self.record_swap,
            SwitchStrategy::FailoverRouting => self.failover_routing,
            SwitchStrategy::WeightedShift { .. } => self.weighted,
            SwitchStrategy::LoadBalancerPool => self.load_balancer_pools,
        }
    }
}

/// How a switch moves traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum SwitchStrategy {
    /// Replace the record's value (A/AAAA/CNAME/alias).
    RecordSwap,
    /// Failover routing: make the provider fail over from primary to secondary.
    FailoverRouting,
    /// Weighted records: give the new target this share of traffic (100 = all).
    WeightedShift {
        /// The share, 0-100, the new target receives.
        percent: u8,
    },
    /// Load-balancer pools: disable the old pool / prefer the new one.
    LoadBalancerPool,
}

impl fmt::Display for SwitchStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchStrategy::RecordSwap => f.write_str("record-swap"),
            SwitchStrategy::FailoverRouting => f.write_str("failover-routing"),
            SwitchStrategy::WeightedShift { percent } => write!(f, "weighted-shift({percent}%)"),
            SwitchStrategy::LoadBalancerPool => f.write_str("load-balancer-pool"),
        }
    }
}

/// A record as the DNS provider serves it now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DnsRecordState {
    /// The record.
    pub record: DnsRecordId,
    /// Where it sends (most of) the traffic.
    pub target: DnsTarget,
    /// Its TTL: resolvers may keep the old answer this long after a switch.
    #[serde(with = "crate::model::duration_serde")]
    pub ttl: Duration,
}

impl DnsRecordState {
    /// `record` pointing at `target` with `ttl`.
    pub fn new(record: DnsRecordId, target: DnsTarget, ttl: Duration) -> Self {
        Self { record, target, ttl }
    }
}

/// A guarded switch: applied only if the record still points at `expected_current`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SwitchRequest {
    /// The record.
    pub record: DnsRecordId,
    /// How to switch.
    pub strategy: SwitchStrategy,
    /// What the caller believes the record points at (ownership guard).
    pub expected_current: DnsTarget,
    /// Where it must point afterwards.
    pub new_target: DnsTarget,
}

impl SwitchRequest {
    /// Switch `record` from `expected_current` to `new_target` with `strategy`.
    pub fn new(
        record: DnsRecordId,
        strategy: SwitchStrategy,
        expected_current: DnsTarget,
        new_target: DnsTarget,
    ) -> Self {
        Self { record, strategy, expected_current, new_target }
    }
}

/// What the ownership guard decided, given the value a record holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardDecision {
    /// The record holds the expected value: write the new one.
    Proceed,
    /// The record already holds the new value (a retried switch): write nothing.
    AlreadySwitched,
}

impl SwitchRequest {
    /// The ownership guard for implementations: `Proceed` if the record holds
    /// `expected_current`, `AlreadySwitched` if it holds `new_target`, else the
    /// [`conflict`](Self::conflict) error.
    ///
    /// ```
    /// use qovery_dr_core::provider::{GuardDecision, SwitchRequest, SwitchStrategy};
    /// use qovery_dr_core::{DnsTarget, ErrorKind};
    ///
    /// let req = SwitchRequest::new(
    ///     "shop.example.com".into(),
    ///     SwitchStrategy::RecordSwap,
    ///     "203.0.113.10".into(),
    ///     "198.51.100.20".into(),
    /// );
    /// assert_eq!(req.guard("my-dns", &"203.0.113.10".into()).unwrap(), GuardDecision::Proceed);
    /// assert_eq!(req.guard("my-dns", &"198.51.100.20".into()).unwrap(), GuardDecision::AlreadySwitched);
    /// assert_eq!(req.guard("my-dns", &"192.0.2.99".into()).unwrap_err().kind(), ErrorKind::Conflict);
    /// ```
    pub fn guard(&self, provider: &str, now: &DnsTarget) -> ProviderResult<GuardDecision> {
        if now == &self.new_target {
            Ok(GuardDecision::AlreadySwitched)
        } else if now == &self.expected_current {
            Ok(GuardDecision::Proceed)
        } else {
            Err(self.conflict(provider, now))
        }
    }

    /// The `Conflict` for a record found at `now`, naming the three values and what to do.
    pub fn conflict(&self, provider: &str, now: &DnsTarget) -> ProviderError {
        ProviderError::new(
            ErrorKind::Conflict,
            provider,
            "switch",
            format!(
                "{} points at {now}, which is neither the expected {} nor the new {}: someone else changed it; \
                 the record was left as it is. Find out who owns it before switching",
                self.record, self.expected_current, self.new_target
            ),
        )
    }

    /// `NotSupported` unless the request's strategy is `supported`.
    pub fn require_strategy(&self, provider: &str, supported: SwitchStrategy) -> ProviderResult<()> {
        if self.strategy == supported {
            return Ok(());
        }
        Err(ProviderError::new(
            ErrorKind::NotSupported,
            provider,
            "switch",
            format!("{} is not available with {provider}; use {supported}", self.strategy),
        ))
    }
}

/// Propagation state of a change at the provider's authoritative servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeStatus {
    /// Accepted, not yet served by every authoritative server.
    Pending,
    /// Served by every authoritative server.
    InSync,
}

/// The health of a target as the DNS provider's health checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TargetHealth {
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
    /// No health check, or no data.
    Unknown,
}

/// A DNS provider that can move traffic between the sites: Route53, Cloudflare, or your own.
///
/// The engine guards every write with the value it expects to replace, and
/// enforces dry runs itself (providers never receive a write in dry run).
#[async_trait]
pub trait DnsSwitcher: Send + Sync + Debug + 'static {
    /// A short name for errors and reports (e.g. `route53`).
    fn name(&self) -> &str;

    /// The strategies and checks this implementation supports.
    fn capabilities(&self) -> DnsCapabilities;

    /// What each operation depends on (control or data plane, and where), for the
    /// static-stability lint ([`crate::stability`]). Default: nothing declared (the
    /// lint lists the steps using this provider as not checked).
    fn planes(&self) -> crate::stability::Planes {
        crate::stability::Planes::undeclared(self.name())
    }

    /// What the operations on `record` depend on (a router answers with the record's
    /// provider's). Default: [`planes`](Self::planes).
    fn planes_for(&self, record: &DnsRecordId) -> crate::stability::Planes {
        let _ = record;
        self.planes()
    }

    /// The capabilities that apply to one record: the same as
    /// [`capabilities`](Self::capabilities) unless the implementation routes
    /// records to different providers (see [`DnsRouter`](crate::provider::DnsRouter)).
    fn capabilities_for(&self, record: &DnsRecordId) -> DnsCapabilities {
        let _ = record;
        self.capabilities()
    }

    /// The record as served now.
    ///
    /// # Contract
    /// Read-only. `NotFound` if the record does not exist.
    async fn current(&self, record: &DnsRecordId) -> ProviderResult<DnsRecordState>;

    /// Switches the record to `new_target` if it points at `expected_current`.
    ///
    /// # Contract
    /// Idempotent: if the record already points at `new_target`, succeeds
    /// without a change (so a retry after `Indeterminate` is safe). `Conflict`
    /// if it points anywhere else than `expected_current` or `new_target`, and
    /// nothing is changed. `NotFound` for an unknown record; `NotSupported` for
    /// a strategy outside the capabilities. On success, [`current`](Self::current)
    /// shows the new target and [`change_status`](Self::change_status) tracks
    /// propagation of the returned change.
    async fn switch(&self, request: &SwitchRequest) -> ProviderResult<ChangeId>;

    /// Whether a change has propagated to every authoritative server, as far as the
    /// provider can know: Route53 reports its own `INSYNC`, an RFC 2136 switcher compares
    /// the SOA serial on every server it lists. A provider that publishes no propagation
    /// status (Cloudflare) says `InSync` once its API serves the change, and documents it.
    /// The engine does not stop there: through [`Providers::resolver`](crate::engine::Providers::resolver)
    /// it asks every authoritative server itself before the DNS step is done.
    ///
    /// # Contract
    /// Read-only. `NotFound` for an unknown change. Once `InSync`, stays `InSync`.
    /// Never `InSync` before the provider serves the change.
    async fn change_status(&self, change: &ChangeId) -> ProviderResult<ChangeStatus>;

    /// The health of a target according to the provider's health checks.
    ///
    /// # Contract
    /// Read-only. `Unknown` (not an error) when the target has no health check.
    async fn target_health(&self, target: &DnsTarget) -> ProviderResult<TargetHealth>;

    /// The failover epoch published beside `record` (the TXT record
    /// [`FailoverEpoch::record_name`]; `None`: none published).
    ///
    /// # Contract
    /// Read-only. `NotSupported` when the provider cannot publish one (the default).
    async fn failover_epoch(&self, record: &DnsRecordId) -> ProviderResult<Option<u64>> {
        Err(ProviderError::new(
            ErrorKind::NotSupported,
            self.name(),
            "failover_epoch",
            format!("this DNS provider publishes no failover epoch beside {record}"),
        ))
    }

    /// Publishes `epoch` beside `record` (the TXT record [`FailoverEpoch::record_name`]),
    /// guarded as a switch is: the TXT record is replaced only if it holds an older epoch
    /// (or none).
    ///
    /// # Contract
    /// Idempotent: publishing the epoch already there returns its change. A newer epoch
    /// already published is a `Conflict`. `NotSupported` when the provider cannot
    /// publish one (the default).
    async fn publish_failover_epoch(&self, record: &DnsRecordId, epoch: &FailoverEpoch) -> ProviderResult<ChangeId> {
        Err(ProviderError::new(
            ErrorKind::NotSupported,
            self.name(),
            "publish_failover_epoch",
            format!("this DNS provider cannot publish epoch {} beside {record}", epoch.epoch),
        ))
    }
}

dns_switcher_methods!(emit_forwarding!(Arc));
dns_switcher_methods!(emit_forwarding!(Box));
