//! Raw plan → typed plan, with cross-field rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use humantime::format_duration as human;

use super::raw::{RawDnsRecord, RawPlan, RawSite, RawStrategy};
use super::{ApprovalPolicy, DnsRecordPlan, DrPlan, FailoverOptions, FieldIssue, PlanError, ReplicationPlan};
use crate::model::{
    ClusterId, DatabaseEndpoint, DatabaseId, DnsRecordId, DnsTarget, EnvironmentId, Objectives, ProjectId,
    RegistryEndpoint, ResilienceLevel, ServiceScale, Site, SiteRole, SiteScale, Tier,
};
use crate::provider::{RegistryLocation, RegistryMapping, ReplicationMode, SwitchStrategy};

/// The heartbeat interval when the plan sets none.
pub(crate) const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

pub(super) struct Check {
    errors: Vec<FieldIssue>,
    warnings: Vec<FieldIssue>,
}

impl Check {
    pub(super) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldIssue::new(path, message));
    }
    pub(super) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(FieldIssue::new(path, message));
    }
}

fn site(raw: RawSite, role: SiteRole, dns: &[RawDnsRecord], check: &mut Check) -> Site {
    let prefix = format!("sites.{role}");
    let auth = super::validate_live::registry_auth(&raw.registry, &format!("{prefix}.registry"), check);
    let registry_url = raw.registry.url.as_ref().and_then(|u| {
        let path = format!("{prefix}.registry.url");
        match url::Url::parse(&u.0) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Some(u.0.trim_end_matches('/').to_owned()),
            _ => {
                check.error(path, format!("expected an http:// or https:// URL, got {:?}", u.0));
                None
            }
        }
    });
    let mut seen = BTreeSet::new();
    for (i, e) in raw.environments.iter().enumerate() {
        if !seen.insert(e.0.clone()) {
            check.error(
                format!("{prefix}.environments[{i}]"),
                format!("expected distinct environments, got {:?} twice", e.0),
            );
        }
    }
    if raw.environments.is_empty() {
        check.error(format!("{prefix}.environments"), "expected at least one environment, got an empty list");
    }
    for (key, _) in raw.parameters.iter().filter(|(k, _)| !valid_var_name(k)) {
        check.error(
            format!("{prefix}.parameters.{key}"),
            "expected an environment variable name [A-Za-z_][A-Za-z0-9_]*",
        );
    }
    let dns_targets = dns
        .iter()
        .map(|r| {
            let target = match role {
                SiteRole::Primary => &r.primary_target,
                SiteRole::Dr => &r.dr_target,
            };
            (DnsRecordId::new(r.name.0.clone()), DnsTarget::new(target.0.clone()))
        })
        .collect();
    Site {
        role,
        name: raw.name.0,
        cloud: raw.cloud.0.to_ascii_lowercase(),
        region: raw.region.0,
        cluster: ClusterId::new(raw.cluster.0),
        project: raw.project.map(|p| ProjectId::new(p.0)),
        environments: raw.environments.into_iter().map(|e| EnvironmentId::new(e.0)).collect(),
        database: database(raw.database),
        additional_databases: raw.additional_databases.into_iter().map(database).collect(),
        registry: RegistryEndpoint { host: raw.registry.host.0, url: registry_url, auth },
        dns_targets,
        parameters: raw.parameters,
        scale: site_scale(raw.scale, &format!("{prefix}.scale"), role, check),
    }
}

fn database(raw: super::raw::RawDatabase) -> DatabaseEndpoint {
    DatabaseEndpoint {
        id: DatabaseId::new(raw.id.0),
        host: raw.host.0,
        port: raw.port.0,
        dbname: raw.dbname.0,
        user: raw.user.0,
        password: raw.password.map(|s| s.0),
        tls_ca_file: raw.tls_ca_file.map(|f| std::path::PathBuf::from(f.0)),
        publication: raw.publication.map(|x| x.0),
        subscription: raw.subscription.map(|x| x.0),
        server: raw.server.map(|s| crate::model::DatabaseServer {
            data_dir: std::path::PathBuf::from(s.data_dir.0),
            bin_dir: s.bin_dir.map(|b| std::path::PathBuf::from(b.0)),
            start_options: s.start_options.map(|o| o.0),
            log_file: s.log_file.map(|l| std::path::PathBuf::from(l.0)),
            os_user: s.os_user.map(|u| u.0),
        }),
        rds: raw.rds.map(|r| crate::model::RdsDatabase {
            region: r.region.0,
            instance: r.instance.0,
            cluster: r.cluster.map(|c| c.0),
            parameter_group: r.parameter_group.map(|g| g.0),
        }),
    }
}

/// Both sites hold the same databases (paired by id, each id once per site), each
/// pair on two different servers; a server's data directory is an absolute path.
fn database_pairs(primary: &Site, dr: &Site, check: &mut Check) {
    for site in [primary, dr] {
        for (n, d) in site.databases().enumerate() {
            if let Some(server) = d.server.as_ref().filter(|s| !s.data_dir.is_absolute()) {
                check.error(
                    format!("{}.server.data_dir", site.database_field(n)),
                    format!("expected an absolute path, got {:?}", server.data_dir.display().to_string()),
                );
            }
        }
    }
    for site in [primary, dr] {
        let mut seen = BTreeSet::new();
        for (n, d) in site.databases().enumerate() {
            if !seen.insert(d.id.clone()) {
                check.error(
                    format!("{}.id", site.database_field(n)),
                    format!("expected distinct database ids on one site, got {:?} twice", d.id.as_str()),
                );
            }
        }
    }
    for (n, p) in primary.databases().enumerate().skip(1) {
        if dr.database_by_id(&p.id).is_none() {
            check.error(
                format!("{}.id", primary.database_field(n)),
                format!(
                    "expected a DR database with id {:?} in sites.dr.additional_databases (the id names the replicated pair), found none",
                    p.id.as_str()
                ),
            );
        }
    }
    for (n, d) in dr.databases().enumerate().skip(1) {
        match primary.database_by_id(&d.id) {
            None => check.error(
                format!("{}.id", dr.database_field(n)),
                format!(
                    "expected a primary database with id {:?} in sites.primary.additional_databases (the id names the replicated pair), found none",
                    d.id.as_str()
                ),
            ),
            Some(p) if p.host == d.host && p.port == d.port => check.error(
                format!("{}.host", dr.database_field(n)),
                format!("expected a database different from the primary's, both are {}:{}", d.host, d.port),
            ),
            Some(_) => {}
        }
    }
}

/// `[sites.<role>.scale]`: every stated scale with min ≤ max, and at least one instance
/// on the DR site (a failover to a site scaled to zero serves nothing).
fn site_scale(raw: Option<super::raw::RawScale>, path: &str, role: SiteRole, check: &mut Check) -> SiteScale {
    let Some(raw) = raw else { return SiteScale::default() };
    let one = |check: &mut Check, min: u32, max: u32, cpu: Option<u32>, mem: Option<u32>, at: &str| {
        if min > max {
            check.error(at, format!("expected min_instances ({min}) at most max_instances ({max})"));
        }
        if role == SiteRole::Dr && max == 0 {
            check.error(at, "expected at least one instance on the DR site: a failover to it would serve nothing");
        }
        let mut s = ServiceScale::new(min, max);
        s.cpu_millicores = cpu;
        s.memory_mib = mem;
        s
    };
    let default = match (raw.min_instances, raw.max_instances) {
        (Some(min), Some(max)) => Some(one(check, min, max, raw.cpu_millicores, raw.memory_mib, path)),
        (None, None) if raw.cpu_millicores.is_none() && raw.memory_mib.is_none() => None,
        _ => {
            check.error(path, "expected both min_instances and max_instances (the scale of every service)");
            None
        }
    };
    let services = raw
        .services
        .into_iter()
        .map(|(name, s)| {
            let at = format!("{path}.services.{name}");
            let scale = one(check, s.min_instances, s.max_instances, s.cpu_millicores, s.memory_mib, &at);
            (name, scale)
        })
        .collect();
    SiteScale { default, services }
}

fn valid_var_name(k: &str) -> bool {
    !k.is_empty()
        && k.bytes().enumerate().all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
}

fn registry_location(host: &str, prefix: Option<&str>, path: &str, check: &mut Check) -> RegistryLocation {
    // Validate the host and prefix with the image reference grammar.
    let probe = match prefix {
        Some(p) => format!("{host}/{p}/probe"),
        None => format!("{host}/probe"),
    };
    if let Err(e) = probe.parse::<crate::model::ImageRef>() {
        check.error(path, format!("expected a registry host[:port] with an optional path prefix: {e}"));
    }
    RegistryLocation { host: host.to_owned(), prefix: prefix.map(|p| p.trim_matches('/').to_owned()) }
}

/// Validates `raw`; `reported` are the problems found while deserialising it (their
/// values were replaced by placeholders), listed first.
pub(crate) fn validate(raw: RawPlan, reported: Vec<FieldIssue>) -> Result<DrPlan, PlanError> {
    let mut check = Check { errors: reported, warnings: Vec::new() };
    let objectives = Objectives::new(raw.objectives.rto.0, raw.objectives.rpo.0);
    let tier = raw.tier.0;

    // Objectives against the tier (skipped when the tier itself is invalid, already reported).
    if let Some(tier) = tier {
        let rto_range = tier.achievable_rto();
        if objectives.rto < rto_range.min {
            check.error(
                "objectives.rto",
                format!(
                    "expected at least {} for tier {tier} (it achieves an RTO of {rto_range}), got {}; choose a faster tier or relax the RTO",
                    human(rto_range.min),
                    human(objectives.rto)
                ),
            );
        } else if objectives.rto > rto_range.max {
            check.warn(
                "objectives.rto",
                format!(
                    "an RTO of {} is looser than tier {tier} needs ({rto_range}); a cheaper tier may do",
                    human(objectives.rto)
                ),
            );
        }
        let rpo_range = tier.achievable_rpo();
        if objectives.rpo < rpo_range.min {
            check.error(
                "objectives.rpo",
                format!(
                    "expected at least {} for tier {tier} (it achieves an RPO of {rpo_range}), got {}; choose a faster tier or relax the RPO",
                    human(rpo_range.min),
                    human(objectives.rpo)
                ),
            );
        }
    }

    // Replication.
    let mode = raw.replication.mode.0;
    let dump_interval = raw.replication.dump_interval.map(|d| d.0);
    match (mode, dump_interval) {
        (Some(ReplicationMode::Dump), None) => check
            .error("replication.dump_interval", "expected a dump interval (e.g. \"1h\") for mode dump, got nothing"),
        (Some(ReplicationMode::Dump), Some(i)) if i > objectives.rpo => check.error(
            "replication.dump_interval",
            format!(
                "expected at most the RPO ({}), got {}: a dump every {} can lose up to {} of data",
                human(objectives.rpo),
                human(i),
                human(i),
                human(i)
            ),
        ),
        (Some(ReplicationMode::Dump), Some(i)) if i.is_zero() => {
            check.error("replication.dump_interval", "expected a positive interval, got 0s")
        }
        (Some(mode @ (ReplicationMode::Physical | ReplicationMode::Logical)), Some(_)) => check.error(
            "replication.dump_interval",
            format!("expected no dump interval for mode {mode} (it applies to mode dump only)"),
        ),
        _ => {}
    }
    let (dump_store, restore_check_interval) = dump_settings(&raw.replication, mode, dump_interval, &mut check);
    let heartbeat_interval = raw.replication.heartbeat_interval.map_or(DEFAULT_HEARTBEAT, |d| d.0);
    if heartbeat_interval.is_zero() {
        check.error("replication.heartbeat_interval", "expected a positive interval, got 0s");
    } else if mode.is_some_and(|m| m != ReplicationMode::Dump)
        && heartbeat_interval > objectives.rpo
        && !objectives.rpo.is_zero()
    {
        check.error(
            "replication.heartbeat_interval",
            format!(
                "expected at most the RPO ({}), got {}: the measured data loss could not be bounded below the RPO",
                human(objectives.rpo),
                human(heartbeat_interval)
            ),
        );
    }
    let resilience = raw.resilience.0;
    if resilience == Some(ResilienceLevel::CrossCloud) && mode == Some(ReplicationMode::Logical) {
        check.warn(
            "replication.mode",
            "logical replication across clouds needs a network path between providers and does not carry sequences or DDL; periodic dumps are the usual cross-cloud strategy",
        );
    }

    // DNS records.
    let mut names = BTreeSet::new();
    let mut dns = Vec::new();
    for (i, r) in raw.dns.iter().enumerate() {
        let path = format!("dns[{i}]");
        if !names.insert(r.name.0.to_ascii_lowercase()) {
            check.error(format!("{path}.name"), format!("expected each record once, got {:?} twice", r.name.0));
        }
        if r.ttl.0 > objectives.rto {
            check.error(
                format!("{path}.ttl"),
                format!(
                    "expected a TTL at most the RTO ({}), got {}: resolvers may keep sending clients to the failed site for the whole TTL",
                    human(objectives.rto),
                    human(r.ttl.0)
                ),
            );
        }
        if r.primary_target.0 == r.dr_target.0 {
            check.error(
                format!("{path}.dr_target"),
                format!("expected a target different from primary_target, both are {:?}", r.dr_target.0),
            );
        }
        if r.health_check.0 == Some(false) {
            check.warn(
                format!("{path}.health_check"),
                "without health checks the engine cannot refuse to point DNS at an unhealthy target from the DNS provider's view",
            );
        }
        dns.push(DnsRecordPlan {
            record: DnsRecordId::new(r.name.0.clone()),
            zone: r.zone.as_ref().map(|z| z.0.clone()),
            ttl: r.ttl.0,
            strategy: match r.strategy.0 {
                // Invalid (already reported): the plan is refused, the placeholder is never seen.
                None | Some(RawStrategy::RecordSwap) => SwitchStrategy::RecordSwap,
                Some(RawStrategy::FailoverRouting) => SwitchStrategy::FailoverRouting,
                Some(RawStrategy::Weighted) => SwitchStrategy::WeightedShift { percent: 100 },
                Some(RawStrategy::LoadBalancerPool) => SwitchStrategy::LoadBalancerPool,
            },
            primary_target: DnsTarget::new(r.primary_target.0.clone()),
            dr_target: DnsTarget::new(r.dr_target.0.clone()),
            health_check: r.health_check.0.unwrap_or(true),
            provider: super::validate_live::dns_provider(r, &path, r.strategy.0, &mut check),
        });
    }
    if dns.is_empty() {
        check.warn("dns", "no DNS record: a failover will not move client traffic");
    }

    // Registries.
    let from = registry_location(
        &raw.sites.primary.registry.host.0,
        raw.sites.primary.registry.prefix.as_ref().map(|p| p.0.as_str()),
        "sites.primary.registry",
        &mut check,
    );
    let to = registry_location(
        &raw.sites.dr.registry.host.0,
        raw.sites.dr.registry.prefix.as_ref().map(|p| p.0.as_str()),
        "sites.dr.registry",
        &mut check,
    );
    let failover = FailoverOptions {
        single_global_registry: raw.failover.single_global_registry.0.unwrap_or(false),
        stop_old_primary: raw.failover.stop_old_primary.0.unwrap_or(false),
        start_stopped_cluster: raw.failover.start_stopped_cluster.0.unwrap_or(false),
        dns_only: raw.failover.dns_only.0.unwrap_or(false),
        reprotect_on_failback: raw.failover.reprotect_on_failback.0.unwrap_or(false),
    };
    match tier {
        Some(t @ (Tier::BackupRestore | Tier::PilotLight)) if failover.dns_only => check.error(
            "failover.dns_only",
            format!(
                "expected a DR site that already serves for a DNS-only failover (warm-standby at full scale, or \
                 active-active); a {t} site is not deployed, so switching DNS to it would send traffic nowhere"
            ),
        ),
        Some(Tier::WarmStandby) if failover.dns_only => check.warn(
            "failover.dns_only",
            "a DNS-only failover sends all traffic to the DR site as it runs: keep it at production scale (hot \
             standby), as nothing is scaled or redeployed during the failover",
        ),
        _ => {}
    }
    match resilience.filter(|r| from == to && *r != ResilienceLevel::CrossAz) {
        Some(level) if failover.single_global_registry => check.warn(
            "failover.single_global_registry",
            format!(
                "both sites pull from one registry, {}, with {level} resilience: if it is in (or depends on) the primary's region, \
                 the DR site cannot pull images when that region is lost; use it only for a registry that is global \
                 (replicated across regions by its provider) and keep the last images in a second registry",
                from.host
            ),
        ),
        Some(level) => check.error(
            "sites.dr.registry.host",
            format!(
                "expected a DR registry different from the primary one for {level} resilience, both are {}: the registry would fail with the primary site (set failover.single_global_registry = true to accept one global registry, with its risk)",
                from.host
            ),
        ),
        None if failover.single_global_registry && from != to => check.error(
            "failover.single_global_registry",
            format!(
                "set, but the sites name two registries ({} and {}): name the one global registry on both sites, or remove the option",
                from.host, to.host
            ),
        ),
        None => {}
    }

    // Approval.
    let required = raw.approval.required.0.unwrap_or(true);
    if raw.approval.required.0 == Some(false) {
        check.warn(
            "approval.required",
            "failover will run without a human approval; keep a manual approval on the trigger",
        );
    }
    let approval = ApprovalPolicy {
        required,
        approvers: raw.approval.approvers.into_iter().map(|a| a.0).collect(),
        drill_auto_approve: raw.approval.drill_auto_approve.0.unwrap_or(false),
    };

    let credentials: BTreeMap<_, _> = raw.credentials.into_iter().map(|(k, v)| (k, v.0)).collect();
    for key in credentials.keys() {
        let home = match key.as_str() {
            "qovery_token" => "qovery.token",
            k if k.contains("cloudflare") => "dns[].cloudflare.token",
            _ => "the field that uses it (qovery.token, dns[].cloudflare.token, a registry's auth, state.password)",
        };
        check.warn(
            format!("credentials.{key}"),
            format!("connecting the plan does not read the credentials table; put this reference in {home}"),
        );
    }
    let qovery = super::validate_live::qovery(raw.qovery, &mut check);
    let state = super::validate_live::state(raw.state, &mut check);
    let heartbeat_schema = raw.replication.heartbeat_schema.map_or_else(|| "qovery_dr".to_owned(), |s| s.0);
    let primary = site(raw.sites.primary, SiteRole::Primary, &raw.dns, &mut check);
    let dr = site(raw.sites.dr, SiteRole::Dr, &raw.dns, &mut check);

    // The two sites must differ.
    if primary.cluster == dr.cluster {
        check.error(
            "sites.dr.cluster",
            format!("expected a cluster different from sites.primary.cluster, both are {:?}: a DR site on the production cluster does not survive its loss", dr.cluster.as_str()),
        );
    }
    if primary.database.host == dr.database.host && primary.database.port == dr.database.port {
        check.error(
            "sites.dr.database.host",
            format!(
                "expected a database different from the primary's, both are {}:{}",
                dr.database.host, dr.database.port
            ),
        );
    }
    if primary.database.id != dr.database.id {
        check.error(
            "sites.dr.database.id",
            format!(
                "expected the same database id on both sites (it names the replicated pair), got {:?} and {:?}",
                primary.database.id.as_str(),
                dr.database.id.as_str()
            ),
        );
    }
    database_pairs(&primary, &dr, &mut check);
    for (i, e) in dr.environments.iter().enumerate() {
        if primary.environments.contains(e) {
            check.error(
                format!("sites.dr.environments[{i}]"),
                format!("expected an environment distinct from the primary site's, got {:?} on both", e.as_str()),
            );
        }
    }
    match resilience {
        Some(ResilienceLevel::CrossRegion) if primary.cloud == dr.cloud && primary.region == dr.region => check.error(
            "sites.dr.region",
            format!(
                "expected a region different from the primary's for cross-region resilience, both are {}",
                dr.region
            ),
        ),
        Some(ResilienceLevel::CrossRegion) if primary.cloud != dr.cloud => check.warn(
            "resilience",
            format!(
                "the sites are on different clouds ({} and {}): this is cross-cloud resilience",
                primary.cloud, dr.cloud
            ),
        ),
        Some(ResilienceLevel::CrossCloud) if primary.cloud == dr.cloud => check.error(
            "sites.dr.cloud",
            format!("expected a cloud different from the primary's for cross-cloud resilience, both are {}", dr.cloud),
        ),
        Some(ResilienceLevel::CrossAz) if primary.region != dr.region || primary.cloud != dr.cloud => check.warn(
            "resilience",
            "cross-az resilience, but the sites are in different regions: cross-region describes this plan better",
        ),
        _ => {}
    }
    let fence = raw.replication.fence.as_ref().and_then(|f| f.0).unwrap_or_default();
    super::rds::pairs(&primary, &dr, mode, fence, resilience, &mut check);
    for key in dr.parameters.keys().filter(|k| !primary.parameters.contains_key(*k)) {
        check.warn(
            format!("sites.dr.parameters.{key}"),
            "set on the DR site only: failback will not restore a primary value for it",
        );
    }

    let environment_pairs = super::pairing::pairs(raw.environment_pairs, &primary, &dr, &mut check);

    // Values invalid at the type level were reported before this function ran.
    let (Some(tier), Some(resilience), Some(mode), true) = (tier, resilience, mode, check.errors.is_empty()) else {
        return Err(PlanError::Invalid(check.errors));
    };
    Ok(DrPlan {
        name: raw.name.0,
        description: raw.description,
        tier,
        resilience,
        objectives,
        replication: ReplicationPlan {
            mode,
            dump_interval,
            heartbeat_interval,
            heartbeat_schema,
            fence,
            dump_store,
            restore_check_interval,
            restore_check_database: raw.replication.restore_check_database.map(|d| d.0),
        },
        primary,
        dr,
        environment_pairs,
        dns,
        registry_mapping: RegistryMapping::new(from, to),
        approval,
        failover,
        credentials,
        qovery,
        state,
        warnings: check.warnings,
        terraform: None,
    })
}

/// The fields that configure an S3 store.
const S3_ONLY: [&str; 4] = [
    "replication.dump_store_region",
    "replication.dump_store_endpoint",
    "replication.dump_store_access_key_id",
    "replication.dump_store_secret_access_key",
];

/// The dump store and the restore-check cadence: only for mode dump, a URL whose scheme
/// the providers know, a region and endpoint only with S3, a check no more often than
/// dumps are taken.
fn dump_settings(
    raw: &super::raw::RawReplication,
    mode: Option<ReplicationMode>,
    dump_interval: Option<Duration>,
    check: &mut Check,
) -> (Option<super::DumpStorePlan>, Option<Duration>) {
    let dump_only = [
        ("replication.dump_location", raw.dump_location.is_some()),
        ("replication.dump_store_region", raw.dump_store_region.is_some()),
        ("replication.dump_store_endpoint", raw.dump_store_endpoint.is_some()),
        ("replication.dump_store_access_key_id", raw.dump_store_access_key_id.is_some()),
        ("replication.dump_store_secret_access_key", raw.dump_store_secret_access_key.is_some()),
        ("replication.restore_check_interval", raw.restore_check_interval.is_some()),
        ("replication.restore_check_database", raw.restore_check_database.is_some()),
    ];
    if let Some(mode @ (ReplicationMode::Physical | ReplicationMode::Logical)) = mode {
        for (field, _) in dump_only.iter().filter(|(_, set)| *set) {
            check.error(*field, format!("expected nothing here for mode {mode} (it applies to mode dump only)"));
        }
        return (None, None);
    }
    let interval = raw.restore_check_interval.as_ref().map(|d| d.0);
    match (interval, dump_interval) {
        (Some(i), _) if i.is_zero() => check.error("replication.restore_check_interval", "expected a positive interval, got 0s"),
        (Some(i), Some(d)) if i < d => check.error(
            "replication.restore_check_interval",
            format!(
                "expected at least the dump interval ({}), got {}: a restore check verifies the newest dump, and there is a new one only every {}",
                human(d),
                human(i),
                human(d)
            ),
        ),
        _ => {}
    }
    let Some(location) = &raw.dump_location else {
        for field in S3_ONLY {
            if dump_only.iter().any(|(f, set)| *f == field && *set) {
                check.error(field, "expected replication.dump_location as well: this configures the store it names");
            }
        }
        return (None, interval);
    };
    let url = match url::Url::parse(&location.0) {
        Ok(u) => u,
        Err(e) => {
            check.error(
                "replication.dump_location",
                format!(
                    "expected a URL such as \"s3://bucket/prefix\" or \"file:///var/lib/qdr/dumps\", got {:?}: {e}",
                    location.0
                ),
            );
            return (None, interval);
        }
    };
    match url.scheme() {
        "s3" if url.host_str().is_none_or(str::is_empty) => {
            check.error("replication.dump_location", format!("expected a bucket after s3://, got {:?}", location.0));
        }
        "s3" => {}
        "file" => {
            for field in S3_ONLY {
                if dump_only.iter().any(|(f, set)| *f == field && *set) {
                    check.error(field, "expected nothing here for a file:// location (it configures S3 stores)");
                }
            }
        }
        other => check.error(
            "replication.dump_location",
            format!("expected an s3:// or file:// URL, got scheme {other:?} (S3-compatible stores use s3:// with dump_store_endpoint)"),
        ),
    }
    let http = |e: &str| matches!(url::Url::parse(e).map(|u| u.scheme().to_owned()).as_deref(), Ok("https" | "http"));
    if let Some(endpoint) = raw.dump_store_endpoint.as_ref().filter(|e| !http(&e.0)) {
        check.error(
            "replication.dump_store_endpoint",
            format!("expected an http(s) URL such as \"https://s3.fr-par.scw.cloud\", got {:?}", endpoint.0),
        );
    }
    if raw.dump_store_access_key_id.is_some() != raw.dump_store_secret_access_key.is_some() {
        check.error(
            "replication.dump_store_secret_access_key",
            "expected both dump_store_access_key_id and dump_store_secret_access_key, or neither (then the AWS_* environment)",
        );
    }
    let store = super::DumpStorePlan {
        access_key_id: raw.dump_store_access_key_id.as_ref().map(|s| s.0.clone()),
        secret_access_key: raw.dump_store_secret_access_key.as_ref().map(|s| s.0.clone()),
        url: location.0.clone(),
        region: raw.dump_store_region.as_ref().map(|r| r.0.clone()),
        endpoint: raw.dump_store_endpoint.as_ref().map(|e| e.0.clone()),
    };
    (Some(store), interval)
}
