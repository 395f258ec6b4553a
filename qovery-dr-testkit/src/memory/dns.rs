//! In-memory [`DnsSwitcher`].

use qovery_dr_core::provider::{
    ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, SwitchRequest, TargetHealth,
};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind, ProviderError, ProviderResult, async_trait};

use crate::world::state::ChangeSim;
use crate::world::{PROVIDER, World, health_of};

/// A [`DnsSwitcher`] over a [`World`]: records with TTLs, guarded switches,
/// propagation delay, and target health bound to environments.
#[derive(Debug, Clone)]
pub struct InMemoryDns {
    world: World,
    capabilities: DnsCapabilities,
}

impl InMemoryDns {
    /// A switcher with every capability.
    pub fn new(world: &World) -> Self {
        Self { world: world.clone(), capabilities: DnsCapabilities::all() }
    }

    /// The same switcher declaring other capabilities.
    pub fn with_capabilities(mut self, capabilities: DnsCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

fn err(kind: ErrorKind, op: &str, msg: String) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

#[async_trait]
impl DnsSwitcher for InMemoryDns {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> DnsCapabilities {
        self.capabilities
    }

    async fn current(&self, record: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        const OP: &str = "dns.current";
        self.world
            .call(OP, false, record.to_string(), |s, _| {
                let r = s
                    .records
                    .get(record)
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("record {record} does not exist")))?;
                Ok(DnsRecordState::new(record.clone(), r.target.clone(), r.ttl))
            })
            .await
    }

    async fn failover_epoch(&self, record: &DnsRecordId) -> ProviderResult<Option<u64>> {
        const OP: &str = "dns.failover_epoch";
        self.world.call(OP, false, record.to_string(), |s, _| Ok(s.epochs.get(record).copied())).await
    }

    async fn publish_failover_epoch(
        &self,
        record: &DnsRecordId,
        epoch: &qovery_dr_core::FailoverEpoch,
    ) -> ProviderResult<ChangeId> {
        const OP: &str = "dns.publish_failover_epoch";
        self.world
            .call(OP, true, format!("{record} epoch {}", epoch.epoch), |s, ctx| {
                if !s.records.contains_key(record) {
                    return Err(err(ErrorKind::NotFound, OP, format!("record {record} does not exist")));
                }
                s.next_id += 1;
                let change = ChangeId::new(format!("change-{}", s.next_id));
                match s.epochs.get(record).copied() {
                    Some(now) if now == epoch.epoch => {
                        ctx.no_change();
                        s.changes.insert(change.clone(), ChangeSim { in_sync_at: ctx.now });
                        return Ok(change);
                    }
                    Some(now) if now > epoch.epoch => {
                        return Err(err(
                            ErrorKind::Conflict,
                            OP,
                            format!("epoch {now} is published beside {record}, newer than {}", epoch.epoch),
                        ));
                    }
                    _ => {}
                }
                s.epochs.insert(record.clone(), epoch.epoch);
                s.changes.insert(change.clone(), ChangeSim { in_sync_at: ctx.now + ctx.config().dns_propagation });
                Ok(change)
            })
            .await
    }

    async fn switch(&self, request: &SwitchRequest) -> ProviderResult<ChangeId> {
        const OP: &str = "dns.switch";
        if !self.capabilities.supports(request.strategy) {
            return Err(err(
                ErrorKind::NotSupported,
                OP,
                format!("strategy {} is not supported by this switcher", request.strategy),
            ));
        }
        let detail =
            format!("{} {} -> {} ({})", request.record, request.expected_current, request.new_target, request.strategy);
        self.world
            .call(OP, true, detail, |s, ctx| {
                let record = s
                    .records
                    .get(&request.record)
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("record {} does not exist", request.record)))?;
                s.next_id += 1;
                let change = ChangeId::new(format!("change-{}", s.next_id));
                if record.target == request.new_target {
                    ctx.no_change();
                    s.changes.insert(change.clone(), ChangeSim { in_sync_at: ctx.now });
                    return Ok(change);
                }
                if record.target != request.expected_current {
                    return Err(err(
                        ErrorKind::Conflict,
                        OP,
                        format!(
                            "record {} points at {}, not the expected {}; not changed",
                            request.record, record.target, request.expected_current
                        ),
                    ));
                }
                let health = health_of(s, &request.new_target, ctx.now);
                if health == TargetHealth::Unhealthy {
                    ctx.violation(format!(
                        "DNS record {} switched to unhealthy target {}",
                        request.record, request.new_target
                    ));
                }
                if let Some(r) = s.records.get_mut(&request.record) {
                    r.target = request.new_target.clone();
                }
                s.changes.insert(change.clone(), ChangeSim { in_sync_at: ctx.now + ctx.config().dns_propagation });
                Ok(change)
            })
            .await
    }

    async fn change_status(&self, change: &ChangeId) -> ProviderResult<ChangeStatus> {
        const OP: &str = "dns.change_status";
        self.world
            .call(OP, false, change.to_string(), |s, ctx| {
                let c = s
                    .changes
                    .get(change)
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("change {change} does not exist")))?;
                Ok(if ctx.now >= c.in_sync_at { ChangeStatus::InSync } else { ChangeStatus::Pending })
            })
            .await
    }

    async fn target_health(&self, target: &DnsTarget) -> ProviderResult<TargetHealth> {
        const OP: &str = "dns.target_health";
        let checks = self.capabilities.health_checks;
        self.world
            .call(OP, false, target.to_string(), |s, ctx| {
                Ok(if checks { health_of(s, target, ctx.now) } else { TargetHealth::Unknown })
            })
            .await
    }
}
