//! Failover routing: a PRIMARY and a SECONDARY record set at one name, the
//! primary watched by a health check. Route53 answers with the primary while
//! that check counts as healthy, otherwise with the secondary.
//!
//! Forcing a failover away from a *healthy* primary means making its health
//! check count as unhealthy: `Inverted=true`. (`Disabled=true` does the
//! opposite: a disabled check always counts as healthy, so traffic would stay.)
//! Every update carries the `HealthCheckVersion` that was read, so Route53
//! refuses it if anyone changed the check in between; the switcher then
//! re-reads and decides again.
//!
//! `GetHealthCheckStatus` reports what Route53's checkers observe at the
//! endpoint; `Inverted` and `Disabled` are applied on top of that.

use aws_sdk_route53::types::{ResourceRecordSet, ResourceRecordSetFailover};
use qovery_dr_core::provider::{ChangeStatus, GuardDecision, SwitchRequest, TargetHealth};
use qovery_dr_core::{ChangeId, DnsRecordId, ErrorKind, ProviderError, ProviderResult};

use super::Route53DnsSwitcher;
use super::error::PROVIDER;
use super::switcher::{health_from_observations, target_of};

/// Change ids of failover switches: `qdr-hc:<health check id>:<primary|secondary>`.
const HC_PREFIX: &str = "qdr-hc:";
/// Attempts when the health check keeps changing under us (`HealthCheckVersionMismatch`).
const VERSION_ATTEMPTS: u32 = 3;

/// The two failover record sets at a name.
#[derive(Debug)]
pub(super) struct FailoverPair {
    pub(super) primary: ResourceRecordSet,
    pub(super) secondary: ResourceRecordSet,
    health_check_id: String,
}

/// The primary's health check as read, with its version for optimistic locking.
#[derive(Debug, Clone, Copy)]
pub(super) struct PrimaryCheck {
    version: i64,
    inverted: bool,
    disabled: bool,
    observed: TargetHealth,
}

impl PrimaryCheck {
    /// Whether the check counts as healthy before inversion: a disabled check always does;
    /// a check without observations yet is treated as healthy, as Route53 does for new checks.
    fn healthy_before_inversion(&self) -> bool {
        self.disabled || self.observed != TargetHealth::Unhealthy
    }

    /// Whether Route53 answers with the primary.
    pub(super) fn routes_to_primary(&self) -> bool {
        self.healthy_before_inversion() != self.inverted
    }
}

impl FailoverPair {
    /// The id of the primary's health check.
    pub(super) fn health_check_id(&self) -> &str {
        &self.health_check_id
    }

    /// The set Route53 answers with, given the primary's check.
    pub(super) fn serving(&self, check: &PrimaryCheck) -> &ResourceRecordSet {
        if check.routes_to_primary() { &self.primary } else { &self.secondary }
    }
}

/// The failover pair at `record`, or `None` if it has no failover record sets.
pub(super) fn failover_pair(
    record: &DnsRecordId,
    sets: &[ResourceRecordSet],
    operation: &str,
) -> ProviderResult<Option<FailoverPair>> {
    let find = |role: ResourceRecordSetFailover| sets.iter().find(|s| s.failover() == Some(&role)).cloned();
    let (primary, secondary) =
        match (find(ResourceRecordSetFailover::Primary), find(ResourceRecordSetFailover::Secondary)) {
            (None, None) => return Ok(None),
            (Some(p), Some(s)) => (p, s),
            _ => {
                return Err(ProviderError::new(
                    ErrorKind::InvalidConfig,
                    PROVIDER,
                    operation,
                    format!("{record} has only one of its PRIMARY and SECONDARY failover record sets; create both"),
                ));
            }
        };
    let health_check_id = primary.health_check_id().map(str::to_owned).ok_or_else(|| {
        ProviderError::new(
            ErrorKind::InvalidConfig,
            PROVIDER,
            operation,
            format!(
                "the PRIMARY failover record of {record} has no health check, so Route53 never fails over; \
                 attach one (HealthCheckId) to use failover routing"
            ),
        )
    })?;
    Ok(Some(FailoverPair { primary, secondary, health_check_id }))
}

impl Route53DnsSwitcher {
    /// Reads the primary's health check configuration and what its checkers observe.
    pub(super) async fn primary_check(&self, health_check_id: &str, operation: &str) -> ProviderResult<PrimaryCheck> {
        let out = self
            .attempt(operation, false, || self.client.get_health_check().health_check_id(health_check_id).send())
            .await?;
        let check = out.health_check().ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Transient,
                PROVIDER,
                operation,
                format!("GetHealthCheck for {health_check_id} returned no health check; retry"),
            )
        })?;
        let config = check.health_check_config();
        let status = self
            .attempt(operation, false, || self.client.get_health_check_status().health_check_id(health_check_id).send())
            .await?;
        Ok(PrimaryCheck {
            version: check.health_check_version(),
            inverted: config.and_then(|c| c.inverted()).unwrap_or(false),
            disabled: config.and_then(|c| c.disabled()).unwrap_or(false),
            observed: health_from_observations(
                status
                    .health_check_observations()
                    .iter()
                    .map(|o| o.status_report().and_then(|r| r.status()).unwrap_or_default()),
            ),
        })
    }

    /// Moves traffic between the PRIMARY and SECONDARY record sets by inverting the primary's check.
    pub(super) async fn failover_routing(&self, request: &SwitchRequest) -> ProviderResult<ChangeId> {
        for _ in 0..VERSION_ATTEMPTS {
            let sets = self.address_sets(&request.record, "switch").await?;
            let pair = failover_pair(&request.record, &sets, "switch")?.ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::NotSupported,
                    PROVIDER,
                    "switch",
                    format!(
                        "{} has no failover (PRIMARY/SECONDARY) record sets; use record-swap, or create them",
                        request.record
                    ),
                )
            })?;
            let (primary, secondary) = (target_of(&pair.primary), target_of(&pair.secondary));
            let to_secondary = request.new_target == secondary;
            if !to_secondary && request.new_target != primary {
                return Err(ProviderError::new(
                    ErrorKind::InvalidInput,
                    PROVIDER,
                    "switch",
                    format!(
                        "failover routing moves {} between its PRIMARY {primary} and SECONDARY {secondary}; \
                         the new target {} is neither",
                        request.record, request.new_target
                    ),
                ));
            }
            let check = self.primary_check(&pair.health_check_id, "switch").await?;
            let now = target_of(pair.serving(&check));
            let change = ChangeId::new(format!(
                "{HC_PREFIX}{}:{}",
                pair.health_check_id,
                if to_secondary { "secondary" } else { "primary" }
            ));
            if request.guard(PROVIDER, &now)? == GuardDecision::AlreadySwitched {
                if to_secondary && !check.inverted {
                    tracing::warn!(record = %request.record, health_check = %pair.health_check_id,
                        "route53 already serves the secondary because the primary is failing; traffic returns \
                         to the primary when it recovers unless its check is inverted then");
                }
                return Ok(change);
            }
            let inverted = if to_secondary {
                check.healthy_before_inversion()
            } else if check.healthy_before_inversion() {
                false
            } else {
                return Err(ProviderError::new(
                    ErrorKind::Conflict,
                    PROVIDER,
                    "switch",
                    format!(
                        "the primary {primary} of {} is failing its health check {}: failing back would send \
                         traffic to a failing endpoint; fix the primary first",
                        request.record, pair.health_check_id
                    ),
                ));
            };
            let sent = self
                .attempt("switch", true, || {
                    self.client
                        .update_health_check()
                        .health_check_id(&pair.health_check_id)
                        .health_check_version(check.version)
                        .inverted(inverted)
                        .send()
                })
                .await;
            match sent {
                Ok(_) => {
                    tracing::info!(record = %request.record, health_check = %pair.health_check_id, inverted,
                        to = %request.new_target, "route53 failover routing switched");
                    return Ok(change);
                }
                Err(err) => {
                    if err.kind() != ErrorKind::Conflict {
                        return Err(err);
                    }
                    tracing::info!(health_check = %pair.health_check_id, "health check changed since read; reading again");
                }
            }
        }
        Err(ProviderError::new(
            ErrorKind::Conflict,
            PROVIDER,
            "switch",
            format!(
                "the health check of {} changed under every one of {VERSION_ATTEMPTS} attempts: someone else is \
                 editing it; find out who before switching",
                request.record
            ),
        ))
    }

    /// `Some(status)` for the change ids [`failover_routing`](Self::failover_routing) returns.
    pub(super) async fn failover_change_status(&self, change: &ChangeId) -> Option<ProviderResult<ChangeStatus>> {
        let rest = change.as_str().strip_prefix(HC_PREFIX)?;
        let status = async {
            let (id, side) = rest
                .rsplit_once(':')
                .filter(|(id, side)| !id.is_empty() && matches!(*side, "primary" | "secondary"))
                .ok_or_else(|| {
                    ProviderError::new(
                        ErrorKind::NotFound,
                        PROVIDER,
                        "change_status",
                        format!("{change} is not a change this switcher returned"),
                    )
                })?;
            let check = self.primary_check(id, "change_status").await?;
            Ok(if check.routes_to_primary() == (side == "primary") {
                ChangeStatus::InSync
            } else {
                ChangeStatus::Pending
            })
        };
        Some(status.await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(inverted: bool, disabled: bool, observed: TargetHealth) -> PrimaryCheck {
        PrimaryCheck { version: 1, inverted, disabled, observed }
    }

    #[test]
    fn inverted_moves_traffic_and_disabled_does_not() {
        use TargetHealth::*;
        assert!(check(false, false, Healthy).routes_to_primary());
        assert!(!check(true, false, Healthy).routes_to_primary(), "inverting a healthy primary fails over");
        assert!(check(false, true, Unhealthy).routes_to_primary(), "a disabled check counts as healthy");
        assert!(!check(true, true, Healthy).routes_to_primary(), "disabled and inverted counts as unhealthy");
        assert!(!check(false, false, Unhealthy).routes_to_primary());
        assert!(check(true, false, Unhealthy).routes_to_primary(), "inverting a failing primary sends traffic to it");
        assert!(check(false, false, Unknown).routes_to_primary(), "no observations yet: healthy, as Route53 does");
    }
}
