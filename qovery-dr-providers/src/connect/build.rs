//! Building each provider from its plan block, behind its cargo feature.

#[cfg(any(feature = "route53", feature = "cloudflare", feature = "rfc2136"))]
use std::collections::BTreeMap;
use std::sync::Arc;

use qovery_dr_core::engine::{FailoverLock, FileJournal, FileLock, HeartbeatWriter, Journal, Providers};
#[cfg(any(feature = "postgres", feature = "registry"))]
use qovery_dr_core::model::Site;
use qovery_dr_core::plan::{DrPlan, StateBackend};
use qovery_dr_core::provider::{ClusterProvider, DnsRouter, DnsSwitcher, RegistrySync, ReplicationManager};

use super::secrets::Secrets;
use super::{ConnectError, ConnectOptions, Connected};

pub(super) fn missing(path: impl Into<String>, what: impl Into<String>) -> ConnectError {
    ConnectError::Missing { path: path.into(), what: what.into() }
}

#[allow(dead_code)] // Used only by the providers a build leaves out.
fn feature(path: impl Into<String>, provider: &'static str, feature: &'static str) -> ConnectError {
    ConnectError::FeatureMissing { path: path.into(), provider, feature }
}

#[allow(dead_code)]
fn provider_error(path: impl Into<String>) -> impl FnOnce(qovery_dr_core::ProviderError) -> ConnectError {
    let path = path.into();
    move |source| ConnectError::Provider { path, source: Box::new(source) }
}

pub(super) async fn connect(plan: &DrPlan, options: &ConnectOptions) -> Result<Connected, ConnectError> {
    let mut secrets = Secrets::default();
    let cluster = cluster(plan, &mut secrets).await?;
    let (replication, replication_back, heartbeat) = replication(plan, options, &mut secrets).await?;
    let (registry, registry_back) = registries(plan, options, &mut secrets).await?;
    let router = dns(plan, options, &mut secrets).await?;
    let resolver = authoritative(plan);
    let state = state(plan, &mut secrets).await?;
    Ok(Connected {
        providers: Providers {
            cluster,
            dns: Arc::new(router.clone()) as Arc<dyn DnsSwitcher>,
            replication,
            registry,
            registry_back: Some(registry_back),
            replication_back,
            clock: None,
            resolver: Some(Arc::new(resolver)),
        },
        state,
        router,
        heartbeat,
    })
}

// ---------------------------------------------------------------- cluster

#[cfg(feature = "qovery")]
async fn cluster(plan: &DrPlan, secrets: &mut Secrets) -> Result<Arc<dyn ClusterProvider>, ConnectError> {
    use crate::qovery::{QoveryClusterProvider, QoveryToken};
    let q = plan.qovery().ok_or_else(no_qovery)?;
    let token = secrets.get("qovery.token", &q.token).await?;
    let mut builder = QoveryClusterProvider::builder(&q.organization).with_credential(QoveryToken::from_secret(token));
    if let Some(url) = &q.api_url {
        builder = builder.with_endpoint(url);
    }
    Ok(Arc::new(builder.build().map_err(provider_error("qovery"))?))
}

#[cfg(not(feature = "qovery"))]
async fn cluster(plan: &DrPlan, _: &mut Secrets) -> Result<Arc<dyn ClusterProvider>, ConnectError> {
    Err(match plan.qovery() {
        Some(_) => feature("qovery", "Qovery", "qovery"),
        None => no_qovery(),
    })
}

fn no_qovery() -> ConnectError {
    missing(
        "qovery",
        "the Qovery API the clusters live in: add [qovery] organization = \"<organization id>\" and token = \"env:QOVERY_API_TOKEN\" \
         (and api_url for another endpoint); a `credentials.qovery_token` entry of the first plan version moves to qovery.token",
    )
}

// ------------------------------------------------------------ replication

/// Where the heartbeat comes from, for [`Connected::start_heartbeat`]: one writer over
/// every database of the site.
#[derive(Debug)]
pub(super) struct HeartbeatSource {
    pairs: Vec<HeartbeatPair>,
    interval: std::time::Duration,
}

/// One database pair's heartbeat set-up.
#[derive(Debug)]
pub(super) struct HeartbeatPair {
    #[cfg(feature = "postgres")]
    pub(super) postgres: Option<Arc<crate::postgres::PostgresReplicationManager>>,
    #[cfg(feature = "postgres")]
    pub(super) postgres_back: Option<Arc<crate::postgres::PostgresReplicationManager>>,
    pub(super) publication: Option<String>,
    pub(super) publication_back: Option<String>,
    pub(super) database: qovery_dr_core::DatabaseId,
}

impl HeartbeatSource {
    /// The writer on the current primaries: the plan's primary site, or the DR site with `back`.
    pub(super) async fn start(&self, providers: &Providers, back: bool) -> Result<HeartbeatWriter, ConnectError> {
        for pair in &self.pairs {
            #[cfg(feature = "postgres")]
            {
                let (pg, publication) = if back {
                    (&pair.postgres_back, pair.publication_back.as_deref())
                } else {
                    (&pair.postgres, pair.publication.as_deref())
                };
                if let Some(pg) = pg {
                    pg.setup_heartbeat(publication).await.map_err(provider_error("replication.heartbeat_schema"))?;
                }
            }
            let _ = (&pair.publication, &pair.publication_back);
        }
        let manager = if back { providers.for_failback() } else { providers.clone() };
        let databases = self.pairs.iter().map(|p| p.database.clone()).collect();
        Ok(HeartbeatWriter::spawn_each(Arc::clone(&manager.replication), databases, self.interval))
    }
}

#[cfg(feature = "postgres")]
pub(super) async fn pg_endpoint(
    site: &Site,
    n: usize,
    secrets: &mut Secrets,
) -> Result<crate::postgres::PgEndpoint, ConnectError> {
    let prefix = site.database_field(n);
    let Some(d) = site.databases().nth(n) else {
        return Err(missing(prefix, "a database at this position of the site"));
    };
    let mut e = crate::postgres::PgEndpoint::new(&d.host, d.port, &d.user, &d.dbname);
    if let Some(p) = &d.password {
        e = e.with_password(secrets.get(&format!("{prefix}.password"), p).await?);
    }
    if let Some(ca) = &d.tls_ca_file {
        if !cfg!(feature = "postgres-tls") {
            return Err(feature(format!("{prefix}.tls_ca_file"), "PostgreSQL TLS", "postgres-tls"));
        }
        e = e.with_tls(ca);
    }
    Ok(e)
}

/// Where the DR site holds the database `id`, the primary site's `n`th.
#[cfg(feature = "postgres")]
fn dr_position(plan: &DrPlan, n: usize, id: &qovery_dr_core::DatabaseId) -> Result<usize, ConnectError> {
    plan.dr().databases().position(|d| &d.id == id).ok_or_else(|| {
        missing(
            format!("{}.id", plan.primary().database_field(n)),
            format!("a DR database with id {id} (the id names the replicated pair)"),
        )
    })
}

/// The replication manager, the one for failback (the pair the other way round), and the heartbeat.
type Replication = (Arc<dyn ReplicationManager>, Option<Arc<dyn ReplicationManager>>, HeartbeatSource);

/// One manager per database pair; a site with several databases gets a
/// [`ReplicationRouter`](qovery_dr_core::provider::ReplicationRouter) over them (and over
/// the failback managers, when every pair has one).
#[cfg(feature = "postgres")]
async fn replication(
    plan: &DrPlan,
    options: &ConnectOptions,
    secrets: &mut Secrets,
) -> Result<Replication, ConnectError> {
    use qovery_dr_core::provider::ReplicationRouter;
    let mut pairs = Vec::new();
    let mut beats = Vec::new();
    for (n, p) in plan.primary().databases().enumerate() {
        let m = dr_position(plan, n, &p.id)?;
        let (manager, back, beat) = pair(plan, options, secrets, n, m).await?;
        pairs.push((manager, back));
        beats.push(beat);
    }
    let source = HeartbeatSource { pairs: beats, interval: plan.replication().heartbeat_interval };
    if let [(manager, back)] = pairs.as_slice() {
        return Ok((Arc::clone(manager), back.clone(), source));
    }
    let mut router = ReplicationRouter::new();
    let mut router_back = Some(ReplicationRouter::new());
    for ((manager, back), db) in pairs.iter().zip(plan.primary().databases()) {
        router = router.route(db.id.clone(), Arc::clone(manager));
        router_back = match (router_back, back) {
            (Some(r), Some(b)) => Some(r.route(db.id.clone(), Arc::clone(b))),
            _ => None,
        };
    }
    Ok((Arc::new(router), router_back.map(|r| Arc::new(r) as Arc<dyn ReplicationManager>), source))
}

/// A pair's manager, its failback manager, and its heartbeat set-up.
#[cfg(feature = "postgres")]
pub(super) type PairManagers = (Arc<dyn ReplicationManager>, Option<Arc<dyn ReplicationManager>>, HeartbeatPair);

#[cfg(feature = "postgres")]
fn local_server(s: &qovery_dr_core::model::DatabaseServer) -> crate::postgres::LocalPgServer {
    let mut server = crate::postgres::LocalPgServer::new(&s.data_dir);
    if let Some(b) = &s.bin_dir {
        server = server.with_bin_dir(b);
    }
    if let Some(o) = &s.start_options {
        server = server.with_start_options(o);
    }
    if let Some(l) = &s.log_file {
        server = server.with_log_file(l);
    }
    if let Some(u) = &s.os_user {
        server = server.with_os_user(u);
    }
    server
}

/// The dumps of one database pair (`n`th of the primary site): in the plan's
/// `dump_location` when it has one (staged in the options' dump folder, else the system's
/// temporary folder), else in the options' dump folder. The first database uses the
/// location itself, the others a folder named by their id inside it; the failback pair
/// (`back`) a `failback` folder beside.
#[cfg(feature = "postgres")]
async fn dump_backup(
    plan: &DrPlan,
    options: &ConnectOptions,
    secrets: &mut Secrets,
    (source, target): (crate::postgres::PgEndpoint, crate::postgres::PgEndpoint),
    n: usize,
    id: &qovery_dr_core::DatabaseId,
    back: bool,
) -> Result<crate::postgres::PgDumpBackup, ConnectError> {
    let sub = |base: std::path::PathBuf| {
        let base = if n == 0 { base } else { base.join(id.as_str()) };
        if back { base.join("failback") } else { base }
    };
    let store = plan.replication().dump_store.as_ref();
    let dir = match (&options.dump_dir, store) {
        (Some(dir), _) => sub(dir.clone()),
        (None, Some(_)) => sub(std::env::temp_dir().join("qovery-dr-dumps").join(plan.name())),
        (None, None) => {
            return Err(missing(
                "replication.dump_location",
                "the dump strategy needs a place for dumps: dump_location = \"s3://bucket/prefix\" in the plan, or ConnectOptions::with_dump_dir(..)",
            ));
        }
    };
    let mut backup = crate::postgres::PgDumpBackup::new(source, target, dir);
    if let Some(bin) = &options.pg_bin_dir {
        backup = backup.with_bin_dir(bin);
    }
    let Some(store) = store else { return Ok(backup) };
    #[cfg(feature = "dump-store")]
    {
        use crate::postgres::{DumpStore, DumpStoreOptions};
        let mut url = store.url.trim_end_matches('/').to_owned();
        if n != 0 {
            url = format!("{url}/{id}");
        }
        if back {
            url.push_str("/failback");
        }
        let mut store_options = DumpStoreOptions::default();
        if let Some(region) = &store.region {
            store_options = store_options.with_region(region);
        }
        if let Some(endpoint) = &store.endpoint {
            store_options = store_options.with_endpoint(endpoint);
        }
        if let (Some(id), Some(key)) = (&store.access_key_id, &store.secret_access_key) {
            let id = secrets.get("replication.dump_store_access_key_id", id).await?;
            let key = secrets.get("replication.dump_store_secret_access_key", key).await?;
            store_options = store_options.with_credentials(id.expose(), key);
        }
        let store = DumpStore::from_url(&url, &store_options).map_err(provider_error("replication.dump_location"))?;
        Ok(backup.with_store(store))
    }
    #[cfg(not(feature = "dump-store"))]
    {
        let _ = (store, backup, secrets);
        Err(feature("replication.dump_location", "object-store dumps", "dump-store"))
    }
}

/// Every database pair's dumps, as [`connect`](super::connect) would keep them, for a
/// program that takes dumps on a schedule ([`run_dump_schedule`](crate::postgres::run_dump_schedule)).
///
/// Errors when the plan's replication mode is not `dump`.
#[cfg(feature = "postgres")]
pub async fn dump_backups(
    plan: &DrPlan,
    options: &ConnectOptions,
) -> Result<Vec<(qovery_dr_core::DatabaseId, crate::postgres::PgDumpBackup)>, ConnectError> {
    if plan.replication().mode != qovery_dr_core::provider::ReplicationMode::Dump {
        return Err(missing(
            "replication.mode",
            format!("dumps are taken for replication mode dump; this plan replicates by {}", plan.replication().mode),
        ));
    }
    let mut secrets = Secrets::default();
    let mut backups = Vec::new();
    for (n, p) in plan.primary().databases().enumerate() {
        let m = dr_position(plan, n, &p.id)?;
        let source = pg_endpoint(plan.primary(), n, &mut secrets).await?;
        let target = pg_endpoint(plan.dr(), m, &mut secrets).await?;
        let backup = dump_backup(plan, options, &mut secrets, (source, target), n, &p.id, false).await?;
        let backup = backup.with_checksums(true);
        backups.push((p.id.clone(), backup));
    }
    Ok(backups)
}

/// The managers of one database pair: the primary site's `n`th database and the DR
/// site's `m`th (the same id).
#[cfg(feature = "postgres")]
async fn pair(
    plan: &DrPlan,
    options: &ConnectOptions,
    secrets: &mut Secrets,
    n: usize,
    m: usize,
) -> Result<PairManagers, ConnectError> {
    use crate::postgres::{HeartbeatSetup, PostgresReplicationManager};
    use qovery_dr_core::provider::ReplicationMode;
    let (Some(p), Some(d)) = (plan.primary().databases().nth(n), plan.dr().databases().nth(m)) else {
        return Err(missing(plan.primary().database_field(n), "the database pair"));
    };
    // RDS on both sides of a physical pair: promoted through the RDS API.
    if let (ReplicationMode::Physical, Some(a), Some(b)) = (plan.replication().mode, &p.rds, &d.rds) {
        #[cfg(feature = "rds")]
        return super::rds::pair(plan, options, secrets, (n, a), (m, b), &p.id).await;
        #[cfg(not(feature = "rds"))]
        {
            let _ = (a, b);
            return Err(feature(format!("{}.rds", plan.primary().database_field(n)), "Amazon RDS", "rds"));
        }
    }
    let primary = pg_endpoint(plan.primary(), n, secrets).await?;
    let standby = pg_endpoint(plan.dr(), m, secrets).await?;
    let id = p.id.clone();
    let manager = match plan.replication().mode {
        ReplicationMode::Physical => PostgresReplicationManager::physical(id.clone(), primary, standby),
        ReplicationMode::Logical => {
            let Some(subscription) = &d.subscription else {
                return Err(missing(
                    format!("{}.subscription", plan.dr().database_field(m)),
                    "logical replication needs the subscription's name on the DR database, e.g. subscription = \"qovery_dr_sub\"",
                ));
            };
            PostgresReplicationManager::logical(id.clone(), primary, standby, subscription)
        }
        ReplicationMode::Dump => {
            let backup = dump_backup(plan, options, secrets, (primary.clone(), standby), n, &id, false).await?;
            PostgresReplicationManager::dump(id.clone(), backup, primary)
        }
        other => {
            return Err(missing(
                "replication.mode",
                format!("replication mode {other} is not supported by this version's PostgreSQL manager"),
            ));
        }
    }
    .with_heartbeat_setup(HeartbeatSetup { schema: plan.replication().heartbeat_schema.clone() })
    .with_fence(plan.replication().fence);
    let manager = Arc::new(manager);
    // Failback: the same pair the other way round (a re-protected original primary streaming
    // from, or subscribed to, the DR database). A dump is one-way: nothing to turn round.
    let back = match plan.replication().mode {
        ReplicationMode::Physical => {
            let (dr, primary) =
                (pg_endpoint(plan.dr(), m, secrets).await?, pg_endpoint(plan.primary(), n, secrets).await?);
            let back = PostgresReplicationManager::physical(id.clone(), dr, primary);
            // The original primary's server, when this machine controls it: a failback can
            // re-protect it (pg_rewind) as a step.
            Some(match &p.server {
                Some(server) => back.with_standby_server(local_server(server)),
                None => back,
            })
        }
        ReplicationMode::Logical => {
            // Re-protection subscribes the original primary under its own name, else the DR's.
            match p.subscription.as_ref().or(d.subscription.as_ref()) {
                Some(subscription) => {
                    let (dr, primary) =
                        (pg_endpoint(plan.dr(), m, secrets).await?, pg_endpoint(plan.primary(), n, secrets).await?);
                    // Re-protection publishes from the DR database under the DR's publication
                    // name, else the original's (created for all tables when missing).
                    let publication = d
                        .publication
                        .clone()
                        .or_else(|| p.publication.clone())
                        .unwrap_or_else(|| "qovery_dr_failback".to_owned());
                    Some(
                        PostgresReplicationManager::logical(id.clone(), dr, primary, subscription)
                            .with_reprotect_publication(publication),
                    )
                }
                None => None,
            }
        }
        // A fresh dump back: the DR database dumped into the original primary, records in a
        // `failback` folder beside the forward ones.
        ReplicationMode::Dump => {
            let (dr, primary) =
                (pg_endpoint(plan.dr(), m, secrets).await?, pg_endpoint(plan.primary(), n, secrets).await?);
            match dump_backup(plan, options, secrets, (dr.clone(), primary), n, &id, true).await {
                Ok(backup) => Some(PostgresReplicationManager::dump(id.clone(), backup, dr)),
                // Without a place for dumps there is no failback pair (the forward one already
                // said so).
                Err(_) => None,
            }
        }
        _ => None,
    }
    .map(|b| {
        Arc::new(
            b.with_heartbeat_setup(HeartbeatSetup { schema: plan.replication().heartbeat_schema.clone() })
                .with_fence(plan.replication().fence),
        )
    });
    let heartbeat = HeartbeatPair {
        postgres: Some(Arc::clone(&manager)),
        postgres_back: back.clone(),
        publication: p.publication.clone(),
        publication_back: d.publication.clone().or_else(|| p.publication.clone()),
        database: id,
    };
    Ok((manager, back.map(|b| b as Arc<dyn ReplicationManager>), heartbeat))
}

#[cfg(not(feature = "postgres"))]
async fn replication(_: &DrPlan, _: &ConnectOptions, _: &mut Secrets) -> Result<Replication, ConnectError> {
    Err(feature("sites.primary.database", "PostgreSQL", "postgres"))
}

// --------------------------------------------------------------- registry

#[cfg(feature = "registry")]
async fn registries(
    plan: &DrPlan,
    options: &ConnectOptions,
    secrets: &mut Secrets,
) -> Result<(Arc<dyn RegistrySync>, Arc<dyn RegistrySync>), ConnectError> {
    use crate::registry::OciRegistrySync;
    use qovery_dr_core::provider::RegistryMapping;
    let (src_url, src_auth) =
        (registry_url(plan.primary())?, super::registry_auth::auth(plan.primary(), options, secrets).await?);
    let (dst_url, dst_auth) =
        (registry_url(plan.dr())?, super::registry_auth::auth(plan.dr(), options, secrets).await?);
    let forward = OciRegistrySync::new(
        src_url.clone(),
        src_auth.clone(),
        dst_url.clone(),
        dst_auth.clone(),
        plan.registry_mapping().clone(),
    );
    let back_mapping = RegistryMapping::new(plan.registry_mapping().to.clone(), plan.registry_mapping().from.clone());
    let back = OciRegistrySync::new(dst_url, dst_auth, src_url, src_auth, back_mapping);
    Ok((Arc::new(forward), Arc::new(back)))
}

#[cfg(feature = "registry")]
fn registry_url(site: &Site) -> Result<url::Url, ConnectError> {
    let text = site.registry.url.clone().unwrap_or_else(|| format!("https://{}", site.registry.host));
    text.parse().map_err(|e| {
        missing(format!("sites.{}.registry.url", site.role), format!("expected the registry's URL, got {text:?}: {e}"))
    })
}

#[cfg(not(feature = "registry"))]
async fn registries(
    _: &DrPlan,
    _: &ConnectOptions,
    _: &mut Secrets,
) -> Result<(Arc<dyn RegistrySync>, Arc<dyn RegistrySync>), ConnectError> {
    Err(feature("sites.dr.registry", "OCI registry", "registry"))
}

// -------------------------------------------------------------------- DNS

// Without a DNS provider compiled in, the first record with a provider ends the loop.
#[cfg_attr(not(any(feature = "route53", feature = "cloudflare", feature = "rfc2136")), allow(clippy::never_loop))]
async fn dns(plan: &DrPlan, options: &ConnectOptions, secrets: &mut Secrets) -> Result<DnsRouter, ConnectError> {
    let _ = options; // used by the AWS providers only
    let mut router = DnsRouter::new();
    #[cfg(any(feature = "route53", feature = "cloudflare", feature = "rfc2136"))]
    let mut shared: BTreeMap<String, Arc<dyn DnsSwitcher>> = BTreeMap::new();
    for (i, r) in plan.dns().iter().enumerate() {
        let path = format!("dns[{i}]");
        let Some(provider) = &r.provider else {
            return Err(missing(
                path,
                format!(
                    "{} names no DNS provider: add one block, e.g. [dns.route53] hosted_zone_id = \"Z…\", [dns.cloudflare] zone_id = \"…\" \
                     token = \"env:CLOUDFLARE_API_TOKEN\", or [dns.rfc2136] server = \"192.0.2.53:53\" zone = \"example.com.\"",
                    r.record
                ),
            ));
        };
        #[cfg(any(feature = "route53", feature = "cloudflare", feature = "rfc2136"))]
        {
            // One switcher per provider and zone, shared by the records it serves.
            let key = serde_json::to_string(provider).unwrap_or_else(|_| path.clone());
            let switcher = match shared.get(&key) {
                Some(s) => Arc::clone(s),
                None => {
                    let s = super::dns::switcher(&path, provider, options, secrets).await?;
                    shared.insert(key, Arc::clone(&s));
                    s
                }
            };
            router = router.route(r.record.clone(), [r.primary_target.clone(), r.dr_target.clone()], switcher);
        }
        #[cfg(not(any(feature = "route53", feature = "cloudflare", feature = "rfc2136")))]
        {
            let _ = (&mut router, &mut *secrets, options);
            return Err(feature(format!("{path}.{}", provider.kind()), provider.kind(), provider.kind()));
        }
    }
    Ok(router)
}

// ------------------------------------------------------------------ state

async fn state(
    plan: &DrPlan,
    secrets: &mut Secrets,
) -> Result<Option<(Arc<dyn FailoverLock>, Arc<dyn Journal>)>, ConnectError> {
    let Some(backend) = &plan.state() else { return Ok(None) };
    match backend {
        StateBackend::File { dir } => {
            let safe: String = plan
                .name()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                .collect();
            let journal = FileJournal::new(dir.join(format!("{safe}.journal.jsonl")));
            Ok(Some((Arc::new(FileLock::new(dir)), Arc::new(journal))))
        }
        #[cfg(feature = "etcd")]
        StateBackend::Etcd { endpoints, prefix, user, password } => {
            use crate::etcd::{EtcdConfig, EtcdFailoverLock};
            let mut config = EtcdConfig::new(endpoints.clone()).with_prefix(prefix);
            if let (Some(u), Some(p)) = (user, password) {
                config = config.with_credentials(u, secrets.get("state.password", p).await?);
            }
            let lock = EtcdFailoverLock::connect(config)
                .await
                .map_err(|source| ConnectError::State { source: Box::new(source) })?;
            let journal = lock.journal(plan.name());
            Ok(Some((Arc::new(lock), Arc::new(journal))))
        }
        #[cfg(feature = "postgres")]
        StateBackend::Postgres { host, port, dbname, user, password } => {
            use crate::postgres::{PgEndpoint, PgFailoverLock};
            let mut e = PgEndpoint::new(host, *port, user, dbname);
            if let Some(p) = password {
                e = e.with_password(secrets.get("state.password", p).await?);
            }
            let lock =
                PgFailoverLock::connect(e).await.map_err(|source| ConnectError::State { source: Box::new(source) })?;
            let journal = lock.journal(plan.name());
            Ok(Some((Arc::new(lock), Arc::new(journal))))
        }
        #[allow(unreachable_patterns)]
        other => {
            let _ = secrets;
            Err(match other {
                StateBackend::Etcd { .. } => feature("state.url", "etcd", "etcd"),
                _ => feature("state.url", "PostgreSQL", "postgres"),
            })
        }
    }
}

/// The AWS configuration for `region`: the one given in the options (its credentials),
/// else the standard chain.
#[cfg(any(feature = "route53", feature = "ecr", feature = "rds"))]
pub(super) async fn aws_config(options: &ConnectOptions, region: String) -> aws_config::SdkConfig {
    match &options.aws {
        Some(sdk) => sdk.to_builder().region(aws_config::Region::new(region)).build(),
        None => {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region))
                .load()
                .await
        }
    }
}

/// The authoritative servers of each record: a `rfc2136` block's `nameservers`, else the
/// zone's NS records (discovered through its `server` when first needed); other
/// providers' servers are not known yet (the engine then trusts the provider's change
/// status, and says so in the step's output).
fn authoritative(plan: &DrPlan) -> super::resolver::RecordResolvers {
    let mut out = super::resolver::RecordResolvers::default();
    for r in plan.dns() {
        match &r.provider {
            #[cfg(feature = "rfc2136")]
            Some(qovery_dr_core::plan::DnsProviderPlan::Rfc2136 { server, zone, nameservers, .. }) => {
                let timeout = std::time::Duration::from_secs(2);
                let addrs: Vec<std::net::SocketAddr> = nameservers.iter().filter_map(|s| s.parse().ok()).collect();
                let update_server = server.parse::<std::net::SocketAddr>();
                match (addrs.is_empty(), update_server) {
                    (false, _) => out.route(
                        r.record.clone(),
                        Arc::new(crate::rfc2136::DnsAuthoritativeResolver::new(addrs, timeout)),
                    ),
                    // Not listed: the zone's NS records say, asked when the DNS step first needs them.
                    (true, Ok(server)) => out.route(
                        r.record.clone(),
                        Arc::new(crate::rfc2136::DiscoveringResolver::new(server, zone, timeout)),
                    ),
                    (true, Err(_)) => out.unknown(r.record.clone(), format!("{server} is not an ip:port")),
                }
            }
            #[cfg(feature = "rfc2136")]
            Some(
                qovery_dr_core::plan::DnsProviderPlan::Route53 { nameservers, .. }
                | qovery_dr_core::plan::DnsProviderPlan::Cloudflare { nameservers, .. },
            ) if !nameservers.is_empty() => {
                let addrs: Vec<std::net::SocketAddr> = nameservers.iter().filter_map(|s| s.parse().ok()).collect();
                let resolver = crate::rfc2136::DnsAuthoritativeResolver::new(addrs, std::time::Duration::from_secs(2));
                out.route(r.record.clone(), Arc::new(resolver));
            }
            Some(p) => out.unknown(
                r.record.clone(),
                format!(
                    "the authoritative servers of {} ({}) are not queried: the switch is verified by the provider's change status alone; \
                     list them in the plan ({}.nameservers = [\"ip:53\", ...]) to have each one checked{}",
                    r.record,
                    p.kind(),
                    p.kind(),
                    if cfg!(feature = "rfc2136") { "" } else { " (the DNS client needs the rfc2136 feature)" }
                ),
            ),
            None => out.unknown(r.record.clone(), format!("{} has no DNS provider", r.record)),
        }
    }
    out
}
