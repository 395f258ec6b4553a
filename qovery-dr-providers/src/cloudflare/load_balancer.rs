//! Load balancers: a record that is a load balancer's hostname is switched by
//! putting the new pool first in `default_pools` (and moving `fallback_pool`
//! off the old pool), enabling the new pool if it is disabled.
//!
//! Targets are pool ids, as listed in `default_pools`. The pool a load
//! balancer prefers is the first *enabled* pool of `default_pools` (the
//! `fallback_pool` if none is enabled); Cloudflare's monitors may still steer
//! around it while it is unhealthy, which [`pool_health`](CloudflareDnsSwitcher::pool_health) shows.

use qovery_dr_core::provider::{DnsRecordState, GuardDecision, SwitchRequest, TargetHealth};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind, ProviderError, ProviderResult};
use reqwest::Method;

use super::client::PROVIDER;
use super::models::{LoadBalancer, LoadBalancerPatch, Pool, PoolHealth, PoolPatch};
use super::switcher::CloudflareDnsSwitcher;

/// Change ids of load-balancer switches: `cflb:<load balancer id>`.
pub(super) const LB_CHANGE_PREFIX: &str = "cflb:";

/// A load balancer with the enabled state of its default pools.
#[derive(Debug)]
pub(super) struct LoadBalancerState {
    pub(super) lb: LoadBalancer,
    pools: Vec<Pool>,
}

impl LoadBalancerState {
    /// The pool Cloudflare prefers: the first enabled default pool, else the fallback.
    pub(super) fn preferred(&self) -> DnsTarget {
        let first_enabled =
            self.lb.default_pools.iter().find(|id| self.pools.iter().any(|p| &p.id == *id && p.enabled));
        DnsTarget::new(first_enabled.or(self.lb.fallback_pool.as_ref()).cloned().unwrap_or_default())
    }

    fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.id == id)
    }
}

/// Healthy when more than half of the Cloudflare PoPs that report see the pool healthy.
fn health_of(report: &PoolHealth) -> TargetHealth {
    let total = report.pop_health.len();
    let healthy = report.pop_health.values().filter(|p| p.healthy).count();
    if total == 0 {
        TargetHealth::Unknown
    } else if healthy * 2 > total {
        TargetHealth::Healthy
    } else {
        TargetHealth::Unhealthy
    }
}

impl CloudflareDnsSwitcher {
    fn account(&self, operation: &str) -> ProviderResult<&str> {
        self.client.account_id().ok_or_else(|| {
            ProviderError::new(
                ErrorKind::InvalidConfig,
                PROVIDER,
                operation,
                "pools belong to an account: configure CloudflareConfig::load_balancers(account_id)",
            )
        })
    }

    fn pool_path(&self, pool: &str, operation: &str) -> ProviderResult<String> {
        if pool.is_empty() || !pool.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ProviderError::new(
                ErrorKind::InvalidInput,
                PROVIDER,
                operation,
                format!("{pool:?} is not a pool id (letters and digits, as in default_pools)"),
            ));
        }
        Ok(format!("/accounts/{}/load_balancers/pools/{pool}", self.account(operation)?))
    }

    /// The health of pool `pool_id` as Cloudflare's monitors see it from each PoP:
    /// healthy when more than half of the reporting PoPs see it healthy, `Unknown` without reports.
    pub async fn pool_health(&self, pool_id: &str) -> ProviderResult<TargetHealth> {
        let path = format!("{}/health", self.pool_path(pool_id, "pool_health")?);
        let (report, _): (PoolHealth, _) =
            self.client.call(Method::GET, &path, &[], None::<&()>, "pool_health", false).await?;
        Ok(health_of(&report))
    }

    /// Enables or disables pool `pool_id`. A disabled pool receives no traffic, and every load
    /// balancer using it (in any zone of the account) fails over to its next pool.
    pub async fn set_pool_enabled(&self, pool_id: &str, enabled: bool) -> ProviderResult<()> {
        let path = self.pool_path(pool_id, "set_pool_enabled")?;
        let _: (Pool, _) =
            self.client.call(Method::PATCH, &path, &[], Some(&PoolPatch { enabled }), "set_pool_enabled", true).await?;
        tracing::info!(pool = pool_id, enabled, "cloudflare pool updated");
        Ok(())
    }

    async fn pool(&self, pool_id: &str, operation: &str) -> ProviderResult<Pool> {
        let path = self.pool_path(pool_id, operation)?;
        Ok(self.client.call(Method::GET, &path, &[], None::<&()>, operation, false).await?.0)
    }

    /// The load balancer answering for `record`, if load balancers are enabled and one does.
    pub(super) async fn load_balancer(
        &self,
        record: &DnsRecordId,
        operation: &str,
    ) -> ProviderResult<Option<LoadBalancerState>> {
        if self.client.account_id().is_none() {
            return Ok(None);
        }
        let path = format!("/zones/{}/load_balancers", self.client.zone_id());
        let (all, _): (Vec<LoadBalancer>, _) =
            self.client.call(Method::GET, &path, &[], None::<&()>, operation, false).await?;
        let wanted = record.as_str().trim_end_matches('.');
        match all.into_iter().find(|lb| lb.name.trim_end_matches('.').eq_ignore_ascii_case(wanted)) {
            Some(lb) => Ok(Some(self.with_pools(lb, operation).await?)),
            None => Ok(None),
        }
    }

    /// `lb` with the enabled state of its default pools.
    async fn with_pools(&self, lb: LoadBalancer, operation: &str) -> ProviderResult<LoadBalancerState> {
        let mut pools = Vec::with_capacity(lb.default_pools.len());
        for id in &lb.default_pools {
            pools.push(self.pool(id, operation).await?);
        }
        Ok(LoadBalancerState { lb, pools })
    }

    async fn load_balancer_by_id(&self, id: &str, operation: &str) -> ProviderResult<LoadBalancer> {
        let path = format!("/zones/{}/load_balancers/{id}", self.client.zone_id());
        Ok(self.client.call(Method::GET, &path, &[], None::<&()>, operation, false).await?.0)
    }

    /// `current` for a load balancer: its preferred pool. TTL: proxied load balancers answer
    /// with Cloudflare's addresses, so the switch is seen at once (reported as 30 s, the
    /// non-proxied default).
    pub(super) fn lb_record_state(record: &DnsRecordId, state: &LoadBalancerState) -> DnsRecordState {
        DnsRecordState::new(record.clone(), state.preferred(), std::time::Duration::from_secs(30))
    }

    /// Makes `request.new_target` the preferred pool of the load balancer in `state`.
    pub(super) async fn lb_switch(
        &self,
        request: &SwitchRequest,
        state: LoadBalancerState,
    ) -> ProviderResult<ChangeId> {
        let change = ChangeId::new(format!("{LB_CHANGE_PREFIX}{}", state.lb.id));
        let new = request.new_target.as_str();
        let in_lb = state.lb.default_pools.iter().any(|p| p == new) || state.lb.fallback_pool.as_deref() == Some(new);
        if !in_lb {
            return Err(ProviderError::new(
                ErrorKind::InvalidInput,
                PROVIDER,
                "switch",
                format!(
                    "pool {new} is not one of the pools of load balancer {} ({}); add it there first",
                    state.lb.name,
                    state.lb.default_pools.join(", ")
                ),
            ));
        }
        if request.guard(PROVIDER, &state.preferred())? == GuardDecision::AlreadySwitched {
            return Ok(change);
        }
        if state.pool(new).is_none_or(|p| !p.enabled) {
            // A disabled pool receives nothing, wherever it stands in the order.
            self.set_pool_enabled(new, true).await?;
        }
        let mut order = vec![new.to_owned()];
        order.extend(state.lb.default_pools.iter().filter(|p| p.as_str() != new).cloned());
        // The fallback must not stay on the pool traffic is leaving.
        let fallback = (state.lb.fallback_pool.as_deref() == Some(request.expected_current.as_str())).then_some(new);
        let path = format!("/zones/{}/load_balancers/{}", self.client.zone_id(), state.lb.id);
        let patch = LoadBalancerPatch { default_pools: &order, fallback_pool: fallback };
        let _: (LoadBalancer, _) = self.client.call(Method::PATCH, &path, &[], Some(&patch), "switch", true).await?;
        // Re-verify: another writer may have raced us between the read and the PATCH.
        let after = self.load_balancer_by_id(&state.lb.id, "switch").await?;
        let now = self.with_pools(after, "switch").await?.preferred();
        if now != request.new_target {
            return Err(request.conflict(PROVIDER, &now));
        }
        tracing::info!(record = %request.record, from = %request.expected_current, to = %request.new_target,
            "cloudflare load balancer switched pools");
        Ok(change)
    }

    /// `InSync` once the load balancer of a `cflb:` change exists (Cloudflare applies on accept).
    pub(super) async fn lb_change_exists(&self, lb_id: &str) -> ProviderResult<()> {
        self.load_balancer_by_id(lb_id, "change_status").await.map(|_| ())
    }

    /// Pool health for targets that are pool ids, when load balancers are enabled.
    pub(super) async fn lb_target_health(&self, target: &DnsTarget) -> ProviderResult<TargetHealth> {
        let t = target.as_str();
        let looks_like_pool = t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
        if self.client.account_id().is_none() || !looks_like_pool {
            return Ok(TargetHealth::Unknown);
        }
        self.pool_health(t).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudflare::models::PopHealth;

    fn lb(default_pools: &[&str], fallback: Option<&str>, enabled: &[(&str, bool)]) -> LoadBalancerState {
        LoadBalancerState {
            lb: LoadBalancer {
                id: "lb".into(),
                name: "shop.example.com".into(),
                default_pools: default_pools.iter().map(|s| s.to_string()).collect(),
                fallback_pool: fallback.map(str::to_owned),
            },
            pools: enabled.iter().map(|(id, e)| Pool { id: id.to_string(), enabled: *e }).collect(),
        }
    }

    #[test]
    fn the_preferred_pool_is_the_first_enabled_default_pool() {
        assert_eq!(lb(&["a", "b"], Some("b"), &[("a", true), ("b", true)]).preferred().as_str(), "a");
        assert_eq!(lb(&["a", "b"], Some("b"), &[("a", false), ("b", true)]).preferred().as_str(), "b");
        assert_eq!(lb(&["a", "b"], Some("c"), &[("a", false), ("b", false)]).preferred().as_str(), "c");
    }

    #[test]
    fn pool_health_is_the_majority_of_pops() {
        let report = |pops: &[bool]| PoolHealth {
            pop_health: pops.iter().enumerate().map(|(i, h)| (format!("pop{i}"), PopHealth { healthy: *h })).collect(),
        };
        assert_eq!(health_of(&report(&[true, true, false])), TargetHealth::Healthy);
        assert_eq!(health_of(&report(&[true, false])), TargetHealth::Unhealthy);
        assert_eq!(health_of(&report(&[])), TargetHealth::Unknown);
    }
}
