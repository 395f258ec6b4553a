//! What [`connect`](super::connect) would build for a plan, without contacting anything.

use std::fmt::Write as _;

use qovery_dr_core::plan::{DnsProviderPlan, DrPlan, StateBackend};
use qovery_dr_core::provider::ReplicationMode;

/// One provider the plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The plan field it comes from.
    pub path: String,
    /// What it is, e.g. `DNS shop.example.com via rfc2136 (zone example.com.)`.
    pub description: String,
    /// The cargo feature of qovery-dr-providers it needs.
    pub feature: &'static str,
    /// Whether this build has that feature.
    pub compiled: bool,
    /// What is missing for it, if anything (a plan of the first version).
    pub problem: Option<String>,
}

/// One secret reference of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretCheck {
    /// The plan field holding it.
    pub path: String,
    /// The reference (`env:NAME`, `file:PATH`), never the value.
    pub reference: String,
    /// `None` if it resolves, else why not.
    pub problem: Option<String>,
}

/// The report of [`inspect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConnections {
    /// The providers, lock and journal.
    pub components: Vec<Component>,
    /// The secrets.
    pub secrets: Vec<SecretCheck>,
}

impl PlanConnections {
    /// Whether `connect` has what it needs: every feature compiled, every block
    /// present, every secret resolvable (the peers themselves are not contacted).
    pub fn ready(&self) -> bool {
        self.components.iter().all(|c| c.compiled && c.problem.is_none())
            && self.secrets.iter().all(|s| s.problem.is_none())
    }

    /// A plain-text rendering.
    pub fn to_text(&self) -> String {
        let mut out = String::from("connections (nothing contacted):\n");
        for c in &self.components {
            let status = match (&c.problem, c.compiled) {
                (Some(p), _) => format!("MISSING: {p}"),
                (None, false) => format!("NOT COMPILED: enable the cargo feature `{}`", c.feature),
                (None, true) => "ok".to_owned(),
            };
            let _ = writeln!(out, "  {:<28} {} [feature {}] {status}", c.path, c.description, c.feature);
        }
        out.push_str("secrets (values never shown):\n");
        if self.secrets.is_empty() {
            out.push_str("  (none)\n");
        }
        for s in &self.secrets {
            let status = s.problem.as_deref().unwrap_or("resolves");
            let _ = writeln!(out, "  {:<40} {:<32} {status}", s.path, s.reference);
        }
        out
    }
}

fn component(
    path: impl Into<String>,
    description: String,
    feature: &'static str,
    problem: Option<String>,
) -> Component {
    let compiled = match feature {
        "qovery" => cfg!(feature = "qovery"),
        "route53" => cfg!(feature = "route53"),
        "cloudflare" => cfg!(feature = "cloudflare"),
        "rfc2136" => cfg!(feature = "rfc2136"),
        "postgres" => cfg!(feature = "postgres"),
        "postgres-tls" => cfg!(feature = "postgres-tls"),
        "registry" => cfg!(feature = "registry"),
        "etcd" => cfg!(feature = "etcd"),
        "ecr" => cfg!(feature = "ecr"),
        "dump-store" => cfg!(feature = "dump-store"),
        "rds" => cfg!(feature = "rds"),
        _ => true,
    };
    Component { path: path.into(), description, feature, compiled, problem }
}

/// What [`connect`](super::connect) would build for `plan` and whether each secret
/// reference resolves (they are read, never shown). Contacts nothing.
pub async fn inspect(plan: &DrPlan) -> PlanConnections {
    let mut components = Vec::new();
    match plan.qovery() {
        Some(q) => components.push(component(
            "qovery",
            format!(
                "cluster: Qovery API {} organization {}",
                q.api_url.as_deref().unwrap_or("https://api.qovery.com"),
                q.organization
            ),
            "qovery",
            None,
        )),
        None => components.push(component(
            "qovery",
            "cluster: Qovery".into(),
            "qovery",
            Some("no [qovery] section (organization, token)".into()),
        )),
    }
    let mode = plan.replication().mode;
    for (n, p) in plan.primary().databases().enumerate() {
        // Validation pairs every database by id on both sites.
        let Some((m, d)) = plan.dr().databases().enumerate().find(|(_, d)| d.id == p.id) else { continue };
        let path =
            if n == 0 { "sites.*.database".to_owned() } else { format!("sites.*.additional_databases[{}]", n - 1) };
        if let (ReplicationMode::Physical, Some(a), Some(b)) = (mode, &p.rds, &d.rds) {
            let description = match &a.cluster {
                Some(cluster) => format!(
                    "replication: {} in Aurora cluster {cluster} ({}), writer {} -> reader {} (FailoverDBCluster)",
                    p.id, a.region, a.instance, b.instance
                ),
                None => format!(
                    "replication: {} RDS instance {} ({}) -> read replica {} ({}) (PromoteReadReplica)",
                    p.id, a.instance, a.region, b.instance, b.region
                ),
            };
            components.push(component(path, description, "rds", None));
            continue;
        }
        components.push(component(
            path,
            format!("replication: PostgreSQL {mode} of {} {}:{} -> {}:{}", p.id, p.host, p.port, d.host, d.port),
            "postgres",
            (mode == ReplicationMode::Logical && d.subscription.is_none())
                .then(|| format!("{}.subscription is needed for logical replication", plan.dr().database_field(m))),
        ));
    }
    if let Some(store) = &plan.replication().dump_store {
        components.push(component(
            "replication.dump_location",
            format!(
                "dumps and their records in {}{}",
                store.url,
                store.endpoint.as_ref().map_or_else(String::new, |e| format!(" (endpoint {e})"))
            ),
            "dump-store",
            None,
        ));
    }
    for site in [&plan.primary(), &plan.dr()] {
        if site.registry.auth.kind() == "ecr" {
            components.push(component(
                format!("sites.{}.registry.auth", site.role),
                format!("Amazon ECR tokens for {}", site.registry.host),
                "ecr",
                None,
            ));
        }
        if let Some(n) = site.databases().position(|d| d.tls_ca_file.is_some()) {
            components.push(component(
                format!("{}.tls_ca_file", site.database_field(n)),
                "PostgreSQL over TLS".into(),
                "postgres-tls",
                None,
            ));
        }
    }
    components.push(component(
        "sites.*.registry",
        format!(
            "images: {} ({}) -> {} ({})",
            plan.primary().registry.url.clone().unwrap_or_else(|| format!("https://{}", plan.primary().registry.host)),
            plan.primary().registry.auth.kind(),
            plan.dr().registry.url.clone().unwrap_or_else(|| format!("https://{}", plan.dr().registry.host)),
            plan.dr().registry.auth.kind()
        ),
        "registry",
        None,
    ));
    for (i, r) in plan.dns().iter().enumerate() {
        let path = format!("dns[{i}]");
        match &r.provider {
            Some(p) => {
                let detail = match p {
                    DnsProviderPlan::Route53 { hosted_zone_id, .. } => format!("hosted zone {hosted_zone_id}"),
                    DnsProviderPlan::Cloudflare { zone_id, .. } => format!("zone {zone_id}"),
                    DnsProviderPlan::Rfc2136 { server, zone, .. } => format!("zone {zone} at {server}"),
                    _ => String::new(),
                };
                components.push(component(
                    path,
                    format!("DNS {} via {} ({detail})", r.record, p.kind()),
                    p.kind(),
                    None,
                ));
            }
            None => components.push(component(
                path,
                format!("DNS {}", r.record),
                "route53",
                Some("no provider block (route53, cloudflare or rfc2136)".into()),
            )),
        }
    }
    match &plan.state() {
        Some(StateBackend::File { dir }) => {
            components.push(component("state.url", format!("lock and journal in {}", dir.display()), "core", None))
        }
        Some(StateBackend::Etcd { endpoints, prefix, .. }) => components.push(component(
            "state.url",
            format!("lock and journal in etcd {} under {prefix}", endpoints.join(",")),
            "etcd",
            None,
        )),
        Some(StateBackend::Postgres { host, port, dbname, .. }) => components.push(component(
            "state.url",
            format!("lock and journal in PostgreSQL {host}:{port}/{dbname}"),
            "postgres",
            None,
        )),
        Some(_) => {}
        None => components.push(component(
            "state",
            "lock and journal".into(),
            "core",
            Some("no [state] url: live runs need a durable lock and journal".into()),
        )),
    }
    let mut secrets = Vec::new();
    for (path, reference) in super::secrets::references(plan) {
        let problem = reference.resolve().await.err().map(|e| e.to_string());
        secrets.push(SecretCheck { path, reference: reference.to_string(), problem });
    }
    for site in [&plan.primary(), &plan.dr()] {
        if let qovery_dr_core::plan::RegistryAuthPlan::DockerConfig { path } = &site.registry.auth {
            let file = path.clone().unwrap_or_else(super::default_docker_config);
            let problem = match std::fs::metadata(&file) {
                Ok(_) => None,
                Err(e) => Some(format!("cannot be read: {e}")),
            };
            secrets.push(SecretCheck {
                path: format!("sites.{}.registry.auth", site.role),
                reference: format!("docker-config {}", file.display()),
                problem,
            });
        }
    }
    PlanConnections { components, secrets }
}
