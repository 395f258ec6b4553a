//! What each kind of provider depends on, operation by operation: the declarations
//! the real providers return from their traits' `planes()`, and what the lint uses for
//! a plan alone (before anything is connected).

use std::collections::BTreeMap;

use crate::model::{DatabaseEndpoint, DnsRecordId, SiteRole};
use crate::plan::{DnsProviderPlan, DrPlan, StateBackend};
use crate::provider::ReplicationMode;

use super::plane::{Location, Plane, Planes};

const CLUSTER_OPS: [&str; 18] = [
    "cluster_status",
    "environment_status",
    "list_environments",
    "list_services",
    "deploy_environment",
    "redeploy_environment",
    "deploy_services",
    "stop_environment",
    "deployment_status",
    "list_variables",
    "set_variable",
    "delete_variable",
    "set_service_image",
    "clone_environment",
    "delete_environment",
    "image_source_ready",
    "start_cluster",
    "set_service_scale",
];

/// The Qovery API: one global control plane for every cluster and environment operation.
pub fn qovery() -> Planes {
    Planes::new("qovery").ops(&CLUSTER_OPS, [Plane::control("Qovery API", Location::Global { home: None })])
}

fn site(site: SiteRole) -> Location {
    Location::Site { site }
}

fn server(role: SiteRole, db: &str) -> Plane {
    let which = match role {
        SiteRole::Primary => "primary",
        SiteRole::Dr => "DR",
    };
    Plane::data(format!("{which} PostgreSQL server of {db}"), site(role))
}

/// A PostgreSQL pair reached over SQL (physical or logical): each operation needs the
/// server it acts on, in its site.
pub fn postgres(database: &str) -> Planes {
    let primary = server(SiteRole::Primary, database);
    let dr = server(SiteRole::Dr, database);
    Planes::new("postgres")
        .op("status", [primary.clone(), dr.clone()])
        .op("primary_writability", [primary.clone()])
        .op("fence_primary", [primary.clone()])
        .op("wait_for_catch_up", [primary.clone(), dr.clone()])
        .ops(
            &[
                "promote_standby",
                "promotion_state",
                "post_promotion_fixups",
                "last_heartbeat",
                "failover_epoch",
                "record_failover_epoch",
            ],
            [dr.clone()],
        )
        .op("write_heartbeat", [primary.clone()])
        .op("reprotect", [primary, dr])
}

/// The dump strategy: dumps written by the primary to a store, restored on the DR server.
pub fn dump(database: &str, store: Location) -> Planes {
    let primary = server(SiteRole::Primary, database);
    let dr = server(SiteRole::Dr, database);
    let store = Plane::data("dump store", store);
    Planes::new("postgres-dump")
        .op("status", [store.clone(), dr.clone()])
        .op("primary_writability", [primary.clone()])
        .op("fence_primary", [primary.clone()])
        .op("wait_for_catch_up", [store.clone(), dr.clone()])
        .op("promote_standby", [store.clone(), dr.clone()])
        .ops(
            &["promotion_state", "post_promotion_fixups", "last_heartbeat", "failover_epoch", "record_failover_epoch"],
            [dr.clone()],
        )
        .op("write_heartbeat", [primary.clone()])
        .op("reprotect", [primary, dr, store])
}

/// Where a dump store is: the store's URL (the lint cannot place it), or, without one,
/// the orchestrator's own disk.
pub fn dump_store(url: Option<&str>) -> Location {
    match url {
        Some(url) if !url.starts_with("file://") => Location::Endpoint { address: url.to_owned() },
        _ => Location::Local,
    }
}

/// An Amazon RDS read replica: the promotion is `PromoteReadReplica` through the DR
/// region's RDS API, the fence a parameter group change through the primary region's.
pub fn rds_replica(database: &str, primary_region: &str, dr_region: &str) -> Planes {
    let api = |region: &str| Plane::control("RDS API", Location::Region { region: region.to_owned() });
    let primary = server(SiteRole::Primary, database);
    let dr = server(SiteRole::Dr, database);
    Planes::new("rds")
        .op("status", [api(primary_region), api(dr_region), primary.clone(), dr.clone()])
        .op("primary_writability", [primary.clone()])
        .op("fence_primary", [api(primary_region), primary.clone()])
        .op("wait_for_catch_up", [primary.clone(), dr.clone()])
        .op("promote_standby", [api(dr_region)])
        .op("promotion_state", [api(dr_region), dr.clone()])
        .ops(&["post_promotion_fixups", "last_heartbeat", "failover_epoch", "record_failover_epoch"], [dr.clone()])
        .op("write_heartbeat", [primary.clone()])
        .op("reprotect", [api(primary_region), api(dr_region)])
}

/// An Aurora cluster (writer and reader in two AZs of one region): the promotion is
/// `FailoverDBCluster` through that region's RDS API.
pub fn aurora(database: &str, region: &str) -> Planes {
    let api = Plane::control("RDS API", Location::Region { region: region.to_owned() });
    let primary = server(SiteRole::Primary, database);
    let dr = server(SiteRole::Dr, database);
    Planes::new("aurora")
        .op("status", [api.clone(), dr.clone()])
        .op("primary_writability", [primary.clone()])
        .op("fence_primary", [api.clone(), primary.clone()])
        .op("wait_for_catch_up", [api.clone()])
        .ops(&["promote_standby", "promotion_state", "reprotect"], [api.clone()])
        .ops(&["post_promotion_fixups", "last_heartbeat", "failover_epoch", "record_failover_epoch"], [dr])
        .op("write_heartbeat", [primary])
}

/// Where a registry is: an ECR registry (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`) is a
/// regional service, any other is the site's.
fn registry_plane(host: &str, role: SiteRole) -> Plane {
    match ecr_region(host) {
        Some(region) => Plane::data(format!("ECR {host}"), Location::Region { region }),
        None => Plane::data(format!("registry {host}"), site(role)),
    }
}

/// `123456789012.dkr.ecr.eu-west-3.amazonaws.com` → `eu-west-3`.
fn ecr_region(host: &str) -> Option<String> {
    let rest = host.split_once(".dkr.ecr.")?.1;
    let region = rest.strip_suffix(".amazonaws.com")?;
    (!region.is_empty()).then(|| region.to_owned())
}

/// OCI registries: parity and copies read the primary's registry (`primary_host`) and
/// write the DR's.
pub fn registries(primary_host: &str, dr_host: &str) -> Planes {
    let source = registry_plane(primary_host, SiteRole::Primary);
    let target = registry_plane(dr_host, SiteRole::Dr);
    Planes::new("registry").ops(&["parity", "copy", "copy_all"], [source, target])
}

/// Route53: record changes and their status go through the one global control plane,
/// hosted in us-east-1; health-check failover routing answers from the data plane.
pub fn route53() -> Planes {
    let control = Plane::control("Route53 control plane", Location::Global { home: Some("us-east-1".into()) });
    Planes::new("route53").ops(&["current", "switch", "change_status", "target_health"], [control])
}

/// Cloudflare: every change through its global API.
pub fn cloudflare() -> Planes {
    let api = Plane::control("Cloudflare API", Location::Global { home: None });
    Planes::new("cloudflare").ops(&["current", "switch", "change_status", "target_health"], [api])
}

/// RFC 2136: updates to the zone's primary server.
pub fn rfc2136(server: &str) -> Planes {
    let primary =
        Plane::data(format!("DNS primary server {server}"), Location::Endpoint { address: server.to_owned() });
    Planes::new("rfc2136").ops(&["current", "switch", "change_status"], [primary])
}

/// The failover lock and journal.
pub fn state(backend: Option<&StateBackend>) -> Planes {
    let plane = match backend {
        None | Some(StateBackend::File { .. }) => Plane::data("lock and journal files", Location::Local),
        Some(StateBackend::Etcd { endpoints, .. }) => {
            Plane::data("etcd (lock and journal)", Location::Endpoint { address: endpoints.join(",") })
        }
        Some(StateBackend::Postgres { host, port, .. }) => {
            Plane::data("PostgreSQL (lock and journal)", Location::Endpoint { address: format!("{host}:{port}") })
        }
    };
    Planes::new("state").ops(&["acquire", "append"], [plane])
}

/// What every operation of a plan's run depends on, by provider role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlaneMap {
    /// The cluster provider.
    pub cluster: Planes,
    /// The replication manager of each database pair, by database id.
    pub replication: BTreeMap<String, Planes>,
    /// The registry sync.
    pub registry: Planes,
    /// The DNS switcher of each record.
    pub dns: BTreeMap<DnsRecordId, Planes>,
    /// The lock and journal.
    pub state: Planes,
}

impl PlaneMap {
    /// The declarations of the providers the plan names (its `[qovery]`, each database's
    /// `rds` block or PostgreSQL servers, its registries, each record's DNS provider, its
    /// `[state]`): what `connect` would build, without connecting.
    pub fn from_plan(plan: &DrPlan) -> Self {
        let mut replication = BTreeMap::new();
        let primaries: Vec<&DatabaseEndpoint> = plan.primary().databases().collect();
        for (p, d) in primaries.iter().zip(plan.dr().databases()) {
            replication.insert(p.id.to_string(), database(plan, p, d));
        }
        let dns = plan
            .dns()
            .iter()
            .map(|r| {
                let planes = match &r.provider {
                    Some(DnsProviderPlan::Route53 { .. }) => route53(),
                    Some(DnsProviderPlan::Cloudflare { .. }) => cloudflare(),
                    Some(DnsProviderPlan::Rfc2136 { server, .. }) => rfc2136(server),
                    _ => Planes::undeclared("dns (no provider in the plan)"),
                };
                (r.record.clone(), planes)
            })
            .collect();
        PlaneMap {
            cluster: qovery(),
            replication,
            registry: registries(&plan.primary().registry.host, &plan.dr().registry.host),
            dns,
            state: state(plan.state()),
        }
    }
}

impl PlaneMap {
    /// The declarations of built providers (each trait's `planes()`; a router's per
    /// database or record), with the plan's `[state]`.
    pub fn from_providers(plan: &DrPlan, providers: &crate::provider::Providers) -> Self {
        let replication =
            plan.primary().databases().map(|d| (d.id.to_string(), providers.replication.planes_for(&d.id))).collect();
        let dns = plan.dns().iter().map(|r| (r.record.clone(), providers.dns.planes_for(&r.record))).collect();
        PlaneMap {
            cluster: providers.cluster.planes(),
            replication,
            registry: providers.registry.planes(),
            dns,
            state: state(plan.state()),
        }
    }
}

impl PlaneMap {
    /// These declarations, with `fallback`'s for each provider that declares nothing
    /// (e.g. a simulated world's providers standing in for the plan's).
    pub fn or_else(mut self, fallback: PlaneMap) -> PlaneMap {
        fn pick(own: &mut Planes, other: Planes) {
            if !own.is_declared() {
                *own = other;
            }
        }
        pick(&mut self.cluster, fallback.cluster);
        pick(&mut self.registry, fallback.registry);
        pick(&mut self.state, fallback.state);
        for (id, planes) in fallback.replication {
            pick(self.replication.entry(id).or_insert_with(|| Planes::undeclared("replication")), planes);
        }
        for (record, planes) in fallback.dns {
            pick(self.dns.entry(record).or_insert_with(|| Planes::undeclared("dns")), planes);
        }
        self
    }
}

fn database(plan: &DrPlan, primary: &DatabaseEndpoint, dr: &DatabaseEndpoint) -> Planes {
    let id = primary.id.to_string();
    match (&primary.rds, &dr.rds) {
        (Some(p), Some(d)) if p.cluster.is_some() && d.cluster.is_some() => aurora(&id, &d.region),
        (Some(p), Some(d)) => rds_replica(&id, &p.region, &d.region),
        _ if plan.replication().mode == ReplicationMode::Dump => {
            dump(&id, dump_store(plan.replication().dump_store.as_ref().map(|s| s.url.as_str())))
        }
        _ => postgres(&id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts_name_their_region() {
        assert_eq!(ecr_region("123456789012.dkr.ecr.eu-west-3.amazonaws.com").as_deref(), Some("eu-west-3"));
        assert_eq!(ecr_region("rg.fr-par.scw.cloud"), None);
        assert_eq!(ecr_region("x.dkr.ecr..amazonaws.com"), None);
    }
}
