//! [`Route53DnsSwitcher`]: guarded record swaps on a Route53 hosted zone.

use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_route53::Client;
use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::config::retry::RetryConfig;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus as AwsChangeStatus, ResourceRecord, ResourceRecordSet,
    RrType,
};
use qovery_dr_core::provider::{
    ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, GuardDecision, SwitchRequest, SwitchStrategy,
    TargetHealth,
};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind, ProviderError, ProviderResult, async_trait};

use super::config::Route53Config;
use super::error::{PROVIDER, map};
use super::failover::failover_pair;

/// Alias targets are written `alias:<hosted zone id of the target>/<dns name>`.
const ALIAS_PREFIX: &str = "alias:";

/// A `DnsSwitcher` for Route53 record swaps (A, AAAA, CNAME or alias records).
///
/// `target_health` reads the Route53 health check configured for a target with
/// [`Route53Config::with_health_check`]: healthy when more than 18 % of Route53's
/// checkers report success (Route53's own rule); `Unknown` without one.
#[derive(Debug, Clone)]
pub struct Route53DnsSwitcher {
    pub(super) client: Client,
    pub(super) config: Route53Config,
}

impl Route53DnsSwitcher {
    /// Loads the AWS configuration from the standard chain (environment, profiles, SSO,
    /// web identity, IMDS) and applies `config`'s overrides.
    pub async fn from_env(config: Route53Config) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_sdk_config(&sdk, config)
    }

    /// Uses an AWS configuration you loaded (e.g. with `aws_config::defaults(..)`).
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, config: Route53Config) -> Self {
        // The SDK does not retry: `attempt` does, spending a rate-limiter token on every
        // attempt (an SDK retry inside one call would bypass the limiter).
        let mut builder = aws_sdk_route53::config::Builder::from(sdk).retry_config(RetryConfig::disabled());
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Self { client: Client::from_conf(builder.build()), config }
    }

    /// One Route53 call with this switcher's retries: a rate-limiter token before every
    /// attempt; throttling retried always (Route53 did not apply the request), other
    /// transient failures only for reads (`write` false: a lost answer to a write may mean
    /// it was applied). The last error of several attempts is marked so that the engine
    /// does not retry it again.
    pub(super) async fn attempt<T, E, F, Fut>(&self, operation: &str, write: bool, call: F) -> ProviderResult<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        qovery_dr_core::resilience::retry(
            &self.config.retry,
            |e| e.kind() == ErrorKind::RateLimited || !write,
            |_| async {
                self.config.limiter.acquire(PROVIDER, operation).await?;
                call().await.map_err(|e| map(operation, write, e))
            },
        )
        .await
    }

    /// Polls `GetChange` until `INSYNC`, backing off from 1 s to 10 s; `Timeout` after `timeout`.
    pub async fn wait_in_sync(&self, change: &ChangeId, timeout: Duration) -> ProviderResult<()> {
        let start = tokio::time::Instant::now();
        let mut delay = Duration::from_secs(1);
        loop {
            if self.change_status(change).await? == ChangeStatus::InSync {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(ProviderError::new(
                    ErrorKind::Timeout,
                    PROVIDER,
                    "wait_in_sync",
                    format!("change {change} still PENDING after {timeout:?}; Route53 usually syncs within 60 s"),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// Every A, AAAA and CNAME record set at `record` (all routing policies), following pagination.
    pub(super) async fn address_sets(
        &self,
        record: &DnsRecordId,
        operation: &str,
    ) -> ProviderResult<Vec<ResourceRecordSet>> {
        let wanted = normalize(record.as_str());
        let mut start_name = format!("{wanted}.");
        let mut start_type: Option<RrType> = None;
        let mut start_id: Option<String> = None;
        let mut found = Vec::new();
        loop {
            let out = self
                .attempt(operation, false, || {
                    self.client
                        .list_resource_record_sets()
                        .hosted_zone_id(&self.config.hosted_zone_id)
                        .start_record_name(&start_name)
                        .set_start_record_type(start_type.clone())
                        .set_start_record_identifier(start_id.clone())
                        .send()
                })
                .await?;
            let mut past = false;
            for set in out.resource_record_sets() {
                if normalize(set.name()) != wanted {
                    past = true;
                    break;
                }
                if matches!(set.r#type(), RrType::A | RrType::Aaaa | RrType::Cname) {
                    found.push(set.clone());
                }
            }
            if past || !out.is_truncated() {
                break;
            }
            match out.next_record_name() {
                Some(n) if normalize(n) == wanted => {
                    start_name = n.to_owned();
                    start_type = out.next_record_type().cloned();
                    start_id = out.next_record_identifier().map(str::to_owned);
                }
                _ => break,
            }
        }
        if found.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                operation,
                format!("{record} has no A, AAAA, CNAME or alias record in hosted zone {}", self.config.hosted_zone_id),
            ));
        }
        Ok(found)
    }

    /// The simple (no routing policy) record set at `record`.
    async fn record_set(&self, record: &DnsRecordId, operation: &str) -> ProviderResult<ResourceRecordSet> {
        let sets = self.address_sets(record, operation).await?;
        sets.into_iter().find(|s| s.set_identifier().is_none()).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotSupported,
                PROVIDER,
                operation,
                format!("{record} uses a routing policy (weighted/failover/latency): a record swap would not move its traffic"),
            )
        })
    }

    /// The weighted record sets at `record` (at least one).
    async fn weighted_sets(&self, record: &DnsRecordId, operation: &str) -> ProviderResult<Vec<ResourceRecordSet>> {
        let sets: Vec<ResourceRecordSet> =
            self.address_sets(record, operation).await?.into_iter().filter(|s| s.weight().is_some()).collect();
        if sets.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::NotSupported,
                PROVIDER,
                operation,
                format!("{record} has no weighted records; use record-swap, or create one weighted record per site"),
            ));
        }
        Ok(sets)
    }

    /// Sends a change batch; returns its change id (`Conflict` when the batch did not
    /// apply: a DELETE or CREATE that no longer matches the zone).
    pub(super) async fn send_batch(&self, operation: &str, batch: ChangeBatch) -> ProviderResult<String> {
        let out = self
            .attempt(operation, true, || {
                self.client
                    .change_resource_record_sets()
                    .hosted_zone_id(&self.config.hosted_zone_id)
                    .change_batch(batch.clone())
                    .send()
            })
            .await?;
        Ok(out.change_info().map(|c| c.id().trim_start_matches("/change/").to_owned()).unwrap_or_default())
    }

    /// Sends a change batch; on `InvalidChangeBatch` re-reads to tell a retry from a foreign change.
    async fn apply(&self, request: &SwitchRequest, changes: Vec<Change>, comment: String) -> ProviderResult<ChangeId> {
        let batch = ChangeBatch::builder()
            .comment(comment)
            .set_changes(Some(changes))
            .build()
            .map_err(|e| ProviderError::new(ErrorKind::InvalidInput, PROVIDER, "switch", format!("batch: {e}")))?;
        match self.send_batch("switch", batch).await {
            Ok(id) => {
                tracing::info!(record = %request.record, to = %request.new_target, strategy = %request.strategy, change = %id, "route53 switched");
                Ok(ChangeId::new(id))
            }
            Err(err) => {
                if err.kind() != ErrorKind::Conflict {
                    return Err(err);
                }
                let again = self.current(&request.record).await?.target;
                if again == request.new_target {
                    Ok(ChangeId::new(format!("{}{}", NOOP_PREFIX, self.config.hosted_zone_id)))
                } else {
                    Err(request.conflict(PROVIDER, &again))
                }
            }
        }
    }

    async fn record_swap(&self, request: &SwitchRequest) -> ProviderResult<ChangeId> {
        let old = self.record_set(&request.record, "switch").await?;
        let now = target_of(&old);
        if request.guard(PROVIDER, &now)? == GuardDecision::AlreadySwitched {
            // Already switched (a retry): report a change that is trivially in sync.
            return Ok(ChangeId::new(format!("{}{}", NOOP_PREFIX, self.config.hosted_zone_id)));
        }
        let new = build_set(old.name(), &request.new_target, old.ttl().unwrap_or(60))?;
        // DELETE exactly what we read + CREATE: Route53 applies both or neither, so a
        // record changed since our read makes the batch fail instead of being overwritten.
        let changes = vec![change(ChangeAction::Delete, old)?, change(ChangeAction::Create, new)?];
        self.apply(request, changes, format!("qovery-dr: {now} -> {}", request.new_target)).await
    }

    async fn weighted_shift(&self, request: &SwitchRequest, percent: u8) -> ProviderResult<ChangeId> {
        if percent > 100 {
            return Err(ProviderError::new(
                ErrorKind::InvalidInput,
                PROVIDER,
                "switch",
                format!("weighted shift of {percent} %: between 0 and 100"),
            ));
        }
        let sets = self.weighted_sets(&request.record, "switch").await?;
        let now = dominant(&sets).map(target_of).unwrap_or_else(|| DnsTarget::new(""));
        let find = |t: &DnsTarget| sets.iter().find(|s| &target_of(s) == t).cloned();
        let to = find(&request.new_target).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                "switch",
                format!(
                    "no weighted record of {} points at {}; create it (weight 0) first",
                    request.record, request.new_target
                ),
            )
        })?;
        let from = find(&request.expected_current).ok_or_else(|| request.conflict(PROVIDER, &now))?;
        if now != request.expected_current && now != request.new_target {
            return Err(request.conflict(PROVIDER, &now));
        }
        let want_to = i64::from(percent);
        if to.weight() == Some(want_to) && from.weight() == Some(100 - want_to) {
            return Ok(ChangeId::new(format!("{}{}", NOOP_PREFIX, self.config.hosted_zone_id)));
        }
        let reweight = |set: &ResourceRecordSet, weight: i64| {
            let mut b = ResourceRecordSet::builder()
                .name(set.name())
                .r#type(set.r#type().clone())
                .set_set_identifier(set.set_identifier().map(str::to_owned))
                .weight(weight)
                .set_ttl(set.ttl())
                .set_resource_records(Some(set.resource_records().to_vec()))
                .set_alias_target(set.alias_target().cloned())
                .set_health_check_id(set.health_check_id().map(str::to_owned));
            if set.resource_records().is_empty() {
                b = b.set_resource_records(None);
            }
            b.build().map_err(|e| {
                ProviderError::new(ErrorKind::InvalidInput, PROVIDER, "switch", format!("record set: {e}"))
            })
        };
        // Both sets DELETEd exactly as read and re-CREATEd with the new weights, atomically.
        let changes = vec![
            change(ChangeAction::Delete, from.clone())?,
            change(ChangeAction::Delete, to.clone())?,
            change(ChangeAction::Create, reweight(&from, 100 - want_to)?)?,
            change(ChangeAction::Create, reweight(&to, want_to)?)?,
        ];
        self.apply(request, changes, format!("qovery-dr: {} % of traffic to {}", percent, request.new_target)).await
    }
}

fn change(action: ChangeAction, set: ResourceRecordSet) -> ProviderResult<Change> {
    Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(|e| ProviderError::new(ErrorKind::InvalidInput, PROVIDER, "switch", format!("change: {e}")))
}

/// The weighted set receiving the most traffic (ties: the smallest set identifier).
fn dominant<'a>(sets: impl IntoIterator<Item = &'a ResourceRecordSet>) -> Option<&'a ResourceRecordSet> {
    sets.into_iter()
        .filter(|s| s.weight().is_some())
        .max_by(|a, b| a.weight().cmp(&b.weight()).then_with(|| b.set_identifier().cmp(&a.set_identifier())))
}

/// A DNS name compared the Route53 way: lower case, no final dot.
pub(super) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The target a record set points at, as users write it.
pub(super) fn target_of(set: &ResourceRecordSet) -> DnsTarget {
    if let Some(alias) = set.alias_target() {
        return DnsTarget::new(format!("{ALIAS_PREFIX}{}/{}", alias.hosted_zone_id(), normalize(alias.dns_name())));
    }
    let mut values: Vec<String> = set.resource_records().iter().map(|r| normalize(r.value())).collect();
    values.sort();
    DnsTarget::new(values.join(","))
}

/// The record set for `target` at `name`, with `ttl` (aliases have none).
fn build_set(name: &str, target: &DnsTarget, ttl: i64) -> ProviderResult<ResourceRecordSet> {
    let invalid = |why: String| ProviderError::new(ErrorKind::InvalidInput, PROVIDER, "switch", why);
    let built = |r: Result<ResourceRecordSet, aws_sdk_route53::error::BuildError>| {
        r.map_err(|e| invalid(format!("record set for {target}: {e}")))
    };
    if let Some(alias) = target.as_str().strip_prefix(ALIAS_PREFIX) {
        let (zone, dns) = alias
            .split_once('/')
            .ok_or_else(|| invalid(format!("alias target {target}: write alias:<hosted zone id>/<dns name>")))?;
        let a = AliasTarget::builder()
            .hosted_zone_id(zone)
            .dns_name(dns)
            .evaluate_target_health(true)
            .build()
            .map_err(|e| invalid(format!("alias target {target}: {e}")))?;
        return built(ResourceRecordSet::builder().name(name).r#type(RrType::A).alias_target(a).build());
    }
    let parts: Vec<&str> = target.as_str().split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(invalid("the new target is empty".to_owned()));
    }
    let ips: Vec<Option<IpAddr>> = parts.iter().map(|p| p.parse().ok()).collect();
    let rr_type = match (ips.iter().all(Option::is_some), ips.first().copied().flatten()) {
        (true, Some(IpAddr::V4(_))) if ips.iter().flatten().all(IpAddr::is_ipv4) => RrType::A,
        (true, Some(IpAddr::V6(_))) if ips.iter().flatten().all(IpAddr::is_ipv6) => RrType::Aaaa,
        (false, _) if parts.len() == 1 && ips[0].is_none() => RrType::Cname,
        _ => return Err(invalid(format!("target {target}: addresses of one family, or exactly one host name"))),
    };
    let mut b = ResourceRecordSet::builder().name(name).r#type(rr_type).ttl(ttl);
    for p in parts {
        b = b.resource_records(
            ResourceRecord::builder().value(p).build().map_err(|e| invalid(format!("value {p}: {e}")))?,
        );
    }
    built(b.build())
}

#[async_trait]
impl DnsSwitcher for Route53DnsSwitcher {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> DnsCapabilities {
        DnsCapabilities::default()
            .with_record_swap(true)
            .with_weighted(true)
            .with_failover_routing(true)
            .with_health_checks(true)
            .with_load_balancer_pools(false)
    }

    fn planes(&self) -> qovery_dr_core::stability::Planes {
        qovery_dr_core::stability::catalogue::route53()
    }

    async fn current(&self, record: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        let sets = self.address_sets(record, "current").await?;
        let check;
        let pair = failover_pair(record, &sets, "current")?;
        let set = match (sets.iter().find(|s| s.set_identifier().is_none()), &pair) {
            (Some(simple), _) => simple,
            (None, Some(pair)) => {
                check = self.primary_check(pair.health_check_id(), "current").await?;
                pair.serving(&check)
            }
            (None, None) => dominant(&sets).ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::NotSupported,
                    PROVIDER,
                    "current",
                    format!("{record} uses a routing policy this switcher does not read (latency/geo/multivalue)"),
                )
            })?,
        };
        Ok(DnsRecordState::new(
            record.clone(),
            target_of(set),
            Duration::from_secs(set.ttl().unwrap_or(60).max(0) as u64),
        ))
    }

    async fn switch(&self, request: &SwitchRequest) -> ProviderResult<ChangeId> {
        match request.strategy {
            SwitchStrategy::RecordSwap => self.record_swap(request).await,
            SwitchStrategy::WeightedShift { percent } => self.weighted_shift(request, percent).await,
            SwitchStrategy::FailoverRouting => self.failover_routing(request).await,
            other => Err(ProviderError::new(
                ErrorKind::NotSupported,
                PROVIDER,
                "switch",
                format!("{other} does not exist in Route53; use record-swap, weighted-shift or failover-routing"),
            )),
        }
    }

    async fn failover_epoch(&self, record: &DnsRecordId) -> ProviderResult<Option<u64>> {
        self.read_epoch(record).await
    }

    /// The TXT record `_qdr-epoch.<record>`, replaced in one change batch (DELETE of the
    /// value read + CREATE): a record changed since the read fails the batch.
    async fn publish_failover_epoch(
        &self,
        record: &DnsRecordId,
        epoch: &qovery_dr_core::FailoverEpoch,
    ) -> ProviderResult<ChangeId> {
        self.publish_epoch(record, epoch).await
    }

    async fn change_status(&self, change: &ChangeId) -> ProviderResult<ChangeStatus> {
        if change.as_str().starts_with(NOOP_PREFIX) {
            return Ok(ChangeStatus::InSync);
        }
        if let Some(status) = self.failover_change_status(change).await {
            return status;
        }
        let id = change.as_str().trim_start_matches("/change/");
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            // Route53 change ids are upper-case letters and digits (e.g. C2682N5HXP0BZ4).
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                "change_status",
                format!("{change} is not a Route53 change id, so no such change exists"),
            ));
        }
        let out = self.attempt("change_status", false, || self.client.get_change().id(id).send()).await?;
        match out.change_info().map(|c| c.status()) {
            Some(AwsChangeStatus::Insync) => Ok(ChangeStatus::InSync),
            Some(_) => Ok(ChangeStatus::Pending),
            None => Err(ProviderError::new(
                ErrorKind::Transient,
                PROVIDER,
                "change_status",
                format!("GetChange for {change} returned no ChangeInfo; retry"),
            )),
        }
    }

    async fn target_health(&self, target: &DnsTarget) -> ProviderResult<TargetHealth> {
        let Some(id) = self.config.health_checks.get(target) else { return Ok(TargetHealth::Unknown) };
        let out = self
            .attempt("target_health", false, || self.client.get_health_check_status().health_check_id(id).send())
            .await?;
        Ok(health_from_observations(
            out.health_check_observations()
                .iter()
                .map(|o| o.status_report().and_then(|r| r.status()).unwrap_or_default()),
        ))
    }
}

/// Change ids for switches that found the record already switched.
pub(super) const NOOP_PREFIX: &str = "qdr-noop:";

/// Route53's rule: healthy when more than 18 % of the checkers report success.
pub(super) fn health_from_observations<'a>(statuses: impl Iterator<Item = &'a str>) -> TargetHealth {
    let (mut total, mut ok) = (0u32, 0u32);
    for s in statuses {
        total += 1;
        if s.starts_with("Success") {
            ok += 1;
        }
    }
    if total == 0 {
        TargetHealth::Unknown
    } else if u64::from(ok) * 100 > u64::from(total) * 18 {
        TargetHealth::Healthy
    } else {
        TargetHealth::Unhealthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_above_eighteen_percent_of_checkers() {
        let obs = |ok: usize, n: usize| {
            let v: Vec<&str> = (0..n).map(|i| if i < ok { "Success: HTTP 200" } else { "Failure: timeout" }).collect();
            health_from_observations(v.into_iter())
        };
        assert_eq!(obs(3, 16), TargetHealth::Healthy, "18.75 %");
        assert_eq!(obs(2, 16), TargetHealth::Unhealthy, "12.5 %");
        assert_eq!(obs(9, 50), TargetHealth::Unhealthy, "exactly 18 % is not more than 18 %");
        assert_eq!(obs(0, 0), TargetHealth::Unknown);
    }

    #[test]
    fn targets_build_the_right_record_types() {
        let t = |s: &str| build_set("app.example.com.", &DnsTarget::new(s), 60);
        assert_eq!(t("203.0.113.1,203.0.113.2").unwrap().r#type(), &RrType::A);
        assert_eq!(t("2001:db8::1").unwrap().r#type(), &RrType::Aaaa);
        assert_eq!(t("lb.example.net").unwrap().r#type(), &RrType::Cname);
        let alias = t("alias:Z35SXDOTRQ7X7K/dualstack.lb.eu-west-3.elb.amazonaws.com").unwrap();
        assert_eq!(target_of(&alias).as_str(), "alias:Z35SXDOTRQ7X7K/dualstack.lb.eu-west-3.elb.amazonaws.com");
        for bad in ["", "203.0.113.1,2001:db8::1", "a.example,b.example", "alias:nozone"] {
            assert_eq!(t(bad).unwrap_err().kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
