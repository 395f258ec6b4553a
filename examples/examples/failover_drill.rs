//! The main example: a DR plan run end to end on the built-in simulated world,
//! or, with `--live`, on the infrastructure the plan names.
//!
//! It prints the readiness summary, the dry-run runbook, live progress, and the
//! report with the measured RTO/RPO against the plan's objectives.
//!
//! ```text
//! cargo run -p qovery-dr-examples --example failover_drill -- [options]
//!   --mode switchover|failover|drill|failback   (default: switchover)
//!   --plan PATH            a plan file (default: examples/plans/aws-cross-region.toml)
//!   --live                 run against the plan's real services (built with --features live):
//!                          providers, lock and journal from qovery_dr_providers::connect; the
//!                          heartbeat is started from the plan; --resume resumes from [state];
//!                          the run waits out the records' old TTL unless --no-ttl-drain
//!   --yes                  approve without asking (otherwise asks on the terminal)
//!   --json                 the report as JSON on stdout (progress goes to stderr)
//!   --journal PATH         a file journal (the simulated world is saved beside it)
//!   --resume               resume the run in --journal (after a crash or a refusal)
//!   --primary-db-down      failover scenario: the primary database crashed too
//!   --override RULE=WHY    override an interlock with a reason (journaled)
//!   --world PATH           where the simulated world is saved (default: beside --journal); a
//!                          world already there is loaded, so several processes share it
//! With the `distributed` feature (needs protoc), one failover at a time across processes:
//!   --etcd URL[,URL...]    failover lock and journal in etcd (instead of --journal)
//!   --pg-lock HOST:PORT/DB failover lock and journal in PostgreSQL (user $PGUSER or postgres,
//!                          password $PGPASSWORD)
//!   --lease-ttl DURATION   how long the lock outlives a dead holder (default 10s)
//!   --lock-wait DURATION   wait this long for a lock held by someone else (default 0s);
//!                          with --resume, takes over the run of a holder that died
//! ```
//!
//! The simulated world runs in real time, faster than life: deployments take
//! seconds, DNS propagates in two, and the final TTL drain is skipped.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use qovery_dr_core::engine::{
    Approval, ApprovalDenied, ApprovalRequest, Approver, AutoApprove, Engine, EngineOptions, Event, FileJournal,
    HeartbeatWriter, Interlock, MemoryJournal, Override, Providers, RunMode, RunReport,
};
use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::provider::{ClusterProvider, ClusterState, DnsSwitcher, RegistrySync, ReplicationManager};
use qovery_dr_core::{Timestamp, async_trait};
use qovery_dr_testkit::world::NodeCondition;
use qovery_dr_testkit::{PlanWorld, World, WorldConfig};

#[derive(Debug)]
struct Args {
    mode: RunMode,
    plan: PathBuf,
    yes: bool,
    json: bool,
    journal: Option<PathBuf>,
    resume: bool,
    primary_db_down: bool,
    overrides: Vec<Override>,
    world: Option<PathBuf>,
    etcd: Vec<String>,
    pg_lock: Option<String>,
    lease_ttl: Duration,
    lock_wait: Duration,
    live: bool,
    no_ttl_drain: bool,
}

fn usage(error: &str) -> ExitCode {
    eprintln!("error: {error}");
    eprintln!(
        "usage: failover_drill [--mode switchover|failover|drill|failback] [--plan PATH] [--yes] [--json] [--journal PATH [--resume]] [--primary-db-down] [--override RULE=WHY]..."
    );
    ExitCode::from(2)
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        mode: RunMode::Switchover,
        plan: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/aws-cross-region.toml")),
        yes: false,
        json: false,
        journal: None,
        resume: false,
        primary_db_down: false,
        overrides: Vec::new(),
        world: None,
        etcd: Vec::new(),
        pg_lock: None,
        lease_ttl: Duration::from_secs(10),
        lock_wait: Duration::ZERO,
        live: false,
        no_ttl_drain: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--mode" => args.mode = value("--mode")?.parse()?,
            "--plan" => args.plan = PathBuf::from(value("--plan")?),
            "--journal" => args.journal = Some(PathBuf::from(value("--journal")?)),
            "--world" => args.world = Some(PathBuf::from(value("--world")?)),
            "--etcd" => args.etcd = value("--etcd")?.split(',').map(str::to_owned).collect(),
            "--pg-lock" => args.pg_lock = Some(value("--pg-lock")?),
            "--lease-ttl" => args.lease_ttl = duration(&value("--lease-ttl")?)?,
            "--lock-wait" => args.lock_wait = duration(&value("--lock-wait")?)?,
            "--override" => {
                let v = value("--override")?;
                let (rule, why) = v.split_once('=').ok_or("--override takes RULE=WHY")?;
                if why.trim().is_empty() {
                    return Err(format!("--override {rule} needs a reason after '='"));
                }
                args.overrides.push(Override::new(rule.parse::<Interlock>()?, why.trim()));
            }
            "--yes" | "-y" => args.yes = true,
            "--json" => args.json = true,
            "--resume" => args.resume = true,
            "--live" => args.live = true,
            "--no-ttl-drain" => args.no_ttl_drain = true,
            "--primary-db-down" => args.primary_db_down = true,
            "--help" | "-h" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let shared = !args.etcd.is_empty() || args.pg_lock.is_some();
    if args.live {
        for (given, flag) in [
            (args.journal.is_some(), "--journal"),
            (args.world.is_some(), "--world"),
            (shared, "--etcd/--pg-lock"),
            (args.primary_db_down, "--primary-db-down"),
        ] {
            if given {
                return Err(format!(
                    "{flag} is for the simulated world; with --live the plan's [state] url holds the lock and journal"
                ));
            }
        }
        return Ok(args);
    }
    if args.resume && args.journal.is_none() && !shared {
        return Err("--resume needs --journal PATH, --etcd URL or --pg-lock HOST:PORT/DB".into());
    }
    if shared && args.world.is_none() {
        return Err("--etcd and --pg-lock need --world PATH (the simulated world every process shares)".into());
    }
    if shared && !cfg!(feature = "distributed") {
        return Err("--etcd and --pg-lock need the example built with --features distributed (and protoc)".into());
    }
    Ok(args)
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?}: {e} (e.g. 500ms, 3s, 2m)"))
}

/// Asks on the terminal.
#[derive(Debug)]
struct TerminalApprover {
    who: String,
}

#[async_trait]
impl Approver for TerminalApprover {
    async fn approve(&self, request: &ApprovalRequest) -> Result<Approval, ApprovalDenied> {
        let loss = request.estimated_data_loss.map_or("unknown".to_owned(), |d| format!("{d:?}"));
        let mut foreseen = String::new();
        for (label, lines) in [("would refuse", &request.foreseen_refusals), ("warning", &request.foreseen_warnings)] {
            for line in lines {
                foreseen.push_str(&format!("\n  {label}: {line}"));
            }
        }
        let prompt = format!(
            "\nApprove the {} of plan {} (run {})? Estimated data loss: {loss}.{foreseen}\nType 'yes' to approve as {}: ",
            request.mode, request.plan, request.run_id, self.who
        );
        let answer = tokio::task::spawn_blocking(move || {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await;
        match answer {
            Ok(Ok(line)) if line.trim() == "yes" => Ok(Approval {
                approver: self.who.clone(),
                at: Timestamp::now(),
                comment: "approved on the terminal".into(),
                accepted_data_loss: None,
            }),
            _ => Err(ApprovalDenied { by: self.who.clone(), reason: "not approved on the terminal".into() }),
        }
    }
}

fn fast() -> WorldConfig {
    WorldConfig {
        queue_delay: Duration::from_millis(500),
        deploy_duration: Duration::from_secs(3),
        stop_duration: Duration::from_secs(1),
        dns_propagation: Duration::from_secs(2),
        poll_step: Duration::from_millis(100),
    }
}

fn progress(json: bool, line: String) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

async fn readiness(plan: &DrPlan, providers: &Providers, json: bool) {
    let mut lines = vec![format!(
        "readiness of plan {} ({}, {}, {})",
        plan.name(),
        plan.tier(),
        plan.resilience(),
        plan.objectives()
    )];
    for (role, site) in [("primary", plan.primary()), ("DR", plan.dr())] {
        let s = providers.cluster.cluster_status(&site.cluster).await;
        lines.push(format!(
            "  {role:<7} cluster {}: {}",
            site.cluster,
            s.map_or_else(|e| e.to_string(), |s| format!("{:?}", s.state))
        ));
    }
    match providers.replication.status(&plan.primary().database.id).await {
        Ok(s) => lines.push(format!(
            "  database {} ({}): link {:?}, lag {} bytes / {}",
            s.database,
            s.mode,
            s.link,
            s.lag_bytes.map_or("?".into(), |b| b.to_string()),
            s.lag.map_or("?".into(), |l| format!("{l:?}"))
        )),
        Err(e) => lines.push(format!("  database: {e}")),
    }
    for env in &plan.dr().environments {
        for svc in providers.cluster.list_services(env).await.unwrap_or_default() {
            if let Some(img) = svc.image {
                let parity = providers.registry.parity(&img).await;
                lines.push(format!(
                    "  image {} in the DR registry: {}",
                    img.familiar(),
                    parity.map_or_else(
                        |e| e.to_string(),
                        |p| if p.is_present() { "present".into() } else { format!("{p:?}") }
                    )
                ));
            }
        }
    }
    for r in plan.dns() {
        let cur = providers.dns.current(&r.record).await;
        let health = providers.dns.target_health(&r.dr_target).await;
        lines.push(format!(
            "  DNS {} -> {} (TTL {:?}, RTO {:?}); DR target {} is {}",
            r.record,
            cur.map_or_else(|e| e.to_string(), |c| c.target.to_string()),
            r.ttl,
            plan.objectives().rto,
            r.dr_target,
            health.map_or_else(|e| e.to_string(), |h| format!("{h:?}"))
        ));
    }
    for l in lines {
        progress(json, l);
    }
}

fn load_world(path: &std::path::Path, plan: &DrPlan) -> Result<PlanWorld, String> {
    let json =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the saved world {}: {e}", path.display()))?;
    let world =
        World::from_json(&json, fast()).map_err(|e| format!("cannot load the saved world {}: {e}", path.display()))?;
    world.persist_to(path);
    Ok(PlanWorld { world, plan: plan.clone() })
}

async fn build_world(args: &Args, plan: &DrPlan) -> Result<PlanWorld, String> {
    let snapshot = args.world.clone().or_else(|| args.journal.as_ref().map(|j| j.with_extension("world.json")));
    if args.resume || (args.world.is_some() && snapshot.as_ref().is_some_and(|p| p.exists())) {
        let Some(path) = &snapshot else { return Err("--resume needs --journal or --world".into()) };
        return load_world(path, plan);
    }
    let pw = World::from_plan(plan);
    pw.world.set_config(fast());
    pw.world.use_real_wall_clock();
    // Heartbeats every 500 ms: the measured RPO is only as fine as the heartbeat.
    let hb = HeartbeatWriter::spawn(
        pw.providers().replication,
        plan.primary().database.id.clone(),
        Duration::from_millis(500),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    match args.mode {
        RunMode::Failover => {
            pw.world.set_cluster_state(&plan.primary().cluster, ClusterState::Error);
            if args.primary_db_down {
                pw.world.set_node_condition(
                    &plan.primary().database.id,
                    qovery_dr_core::provider::Node::Primary,
                    NodeCondition::Down,
                );
            }
        }
        RunMode::Failback => {
            // Get to the state a failback starts from: failed over, then re-protected.
            let e = Engine::builder(plan.clone(), pw.providers())
                .clock(pw.world.clone())
                .approver(AutoApprove::new(approver_name()))
                .options(EngineOptions {
                    poll_interval: Duration::from_millis(250),
                    drain_ttl: false,
                    ..EngineOptions::default()
                })
                .journal(MemoryJournal::new())
                .build();
            e.run(RunMode::Switchover).await.map_err(|f| format!("preparing the failback: {}", f.error))?;
            pw.world.reprotect(&plan.primary().database.id);
            progress(
                args.json,
                "(simulated: a switchover to the DR site happened, then the original primary was re-protected)".into(),
            );
        }
        _ => {}
    }
    drop(hb);
    match (&snapshot, &args.world) {
        // A shared world: publish ours only if nobody did (several processes may start at once),
        // otherwise use theirs, so that every process sees the same world.
        (Some(path), Some(_)) => {
            let candidate = path.with_extension(format!("{}.candidate.json", std::process::id()));
            pw.world.persist_to(&candidate);
            pw.world.save().await;
            let published = std::fs::hard_link(&candidate, path);
            let _ = std::fs::remove_file(&candidate);
            match published {
                Ok(()) => pw.world.persist_to(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_world(path, plan),
                Err(e) => return Err(format!("cannot publish the world at {}: {e}", path.display())),
            }
        }
        (Some(path), None) => {
            pw.world.persist_to(path);
            pw.world.save().await;
        }
        _ => {}
    }
    Ok(pw)
}

/// The shared lock's store cannot be reached: nothing was done.
#[cfg(feature = "distributed")]
fn lock_unavailable(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// This machine's name, for the lock holder (an operator across machines needs it).
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "failover_drill".to_owned())
}

fn approver_name() -> String {
    std::env::var("QDR_APPROVER").unwrap_or_else(|_| "oncall-sre".to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) if e == "help" => return usage("showing help"),
        Err(e) => return usage(&e),
    };
    let plan = match DrPlan::load(&args.plan).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let options = EngineOptions {
        operator: format!(
            "{}@{}[pid {}]",
            std::env::var("USER").unwrap_or_else(|_| "operator".into()),
            host_name(),
            std::process::id()
        ),
        overrides: args.overrides.clone(),
        poll_interval: Duration::from_millis(250),
        drain_ttl: args.live && !args.no_ttl_drain,
        lock_wait: args.lock_wait,
        ..EngineOptions::default()
    };
    // The heartbeat writer lives as long as the run (live mode).
    let mut _heartbeat = None;
    let mut builder = if args.live {
        let connected = match qovery_dr_examples::connect_live(&plan).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        readiness(&plan, &connected.providers, args.json).await;
        // The heartbeat bounds the loss of an unplanned failover. It cannot be set up on a
        // fenced primary (a run that stopped past the fence): a resume goes on without it.
        // A failback starts from the DR database: the heartbeat is written there.
        let heartbeat = if args.mode == RunMode::Failback {
            connected.start_heartbeat_back().await
        } else {
            connected.start_heartbeat().await
        };
        match heartbeat {
            Ok(h) => _heartbeat = Some(h),
            Err(e) if args.resume => {
                eprintln!("note: no heartbeat for this resume ({e}); the run goes on from its journal");
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        match connected.engine_builder(plan.clone()) {
            Ok(b) => b.options(options),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        let pw = match build_world(&args, &plan).await {
            Ok(pw) => pw,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let providers = pw.providers();
        readiness(&plan, &providers, args.json).await;
        // The engine takes the world's clock from its providers.
        let mut builder = Engine::builder(plan.clone(), providers).options(options);
        builder = match &args.journal {
            Some(path) => builder.journal(FileJournal::new(path)),
            None => builder.journal(MemoryJournal::new()),
        };
        builder
    };
    #[cfg(feature = "distributed")]
    if !args.etcd.is_empty() {
        use qovery_dr_providers::etcd::{EtcdConfig, EtcdFailoverLock};
        let config = EtcdConfig::new(args.etcd.clone()).with_lease_ttl(args.lease_ttl);
        let lock = match EtcdFailoverLock::connect(config).await {
            Ok(l) => l,
            Err(e) => return lock_unavailable(e),
        };
        builder = builder.journal(lock.journal(plan.name())).lock(lock);
    }
    #[cfg(feature = "distributed")]
    if let Some(target) = &args.pg_lock {
        use qovery_dr_providers::postgres::{PgEndpoint, PgFailoverLock};
        let parsed = target.split_once('/').and_then(|(hp, db)| {
            let (host, port) = hp.rsplit_once(':')?;
            Some((host.to_owned(), port.parse::<u16>().ok()?, db.to_owned()))
        });
        let Some((host, port, db)) = parsed else {
            return usage(&format!("--pg-lock {target:?}: write HOST:PORT/DBNAME"));
        };
        let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
        let mut endpoint = PgEndpoint::new(host, port, user, db);
        if let Ok(p) = std::env::var("PGPASSWORD") {
            endpoint = endpoint.with_password(qovery_dr_core::SecretString::new(p));
        }
        let lock = match PgFailoverLock::connect(endpoint).await {
            Ok(l) => l,
            Err(e) => return lock_unavailable(e),
        };
        builder = builder.journal(lock.journal(plan.name())).lock(lock);
    }
    builder = if args.yes {
        builder.approver(AutoApprove::new(approver_name()))
    } else {
        builder.approver(TerminalApprover { who: approver_name() })
    };
    let engine = builder.build();

    if !args.resume {
        match engine.plan(args.mode).await {
            Ok(runbook) => {
                progress(args.json, String::new());
                for line in runbook.to_table().lines() {
                    progress(args.json, line.to_owned());
                }
            }
            Err(e) => {
                eprintln!("dry run failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    let mut events = engine.subscribe();
    let json = args.json;
    let started = tokio::time::Instant::now();
    let printer = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            let t = started.elapsed().as_secs_f64();
            let line = match event {
                Event::StageStarted { stage, steps } => {
                    format!("[{t:6.2}s] == {stage} ({steps} step{})", if steps == 1 { "" } else { "s" })
                }
                Event::StepStarted { step } => format!("[{t:6.2}s]    {step} ..."),
                Event::StepFinished { step, attempts, took } => format!(
                    "[{t:6.2}s]    {step} done in {took:.2?} ({attempts} attempt{})",
                    if attempts == 1 { "" } else { "s" }
                ),
                Event::StepSkipped { step, reason } => format!("[{t:6.2}s]    {step} skipped: {reason}"),
                Event::AttemptFailed { step, attempt, message, .. } => {
                    format!("[{t:6.2}s]    {step} attempt {attempt} failed: {message}")
                }
                Event::Retrying { step, attempt, after } => {
                    format!("[{t:6.2}s]    {step} retrying (attempt {attempt}) in {after:.2?}")
                }
                Event::Waiting { step, what } => format!("[{t:6.2}s]    {step} waiting for {what}"),
                Event::InterlockRefused { step, rule, evidence } => {
                    format!("[{t:6.2}s] !! {step} REFUSED by {rule}: {evidence}")
                }
                Event::InterlockOverridden { step, rule, reason } => {
                    format!("[{t:6.2}s] !! {step}: {rule} overridden: {reason}")
                }
                Event::ApprovalRequested { run_id } => format!("[{t:6.2}s] approval requested for {run_id}"),
                other => format!("[{t:6.2}s] {other:?}"),
            };
            progress(json, line);
        }
    });

    let result = if args.resume { engine.resume().await } else { engine.run(args.mode).await };
    drop(engine);
    let _ = printer.await;
    let (report, ok): (RunReport, bool) = match result {
        Ok(r) => (r, true),
        Err(f) => {
            eprintln!("\nthe run stopped: {}", f.error);
            if args.live {
                eprintln!(
                    "resume it with: --live --plan {} --resume (add --override RULE=WHY to override an interlock)",
                    args.plan.display()
                );
            }
            if let Some(j) = &args.journal {
                eprintln!(
                    "resume it with: --journal {} --resume (add --override RULE=WHY to override an interlock)",
                    j.display()
                );
            }
            if let (false, Some(w)) = (args.etcd.is_empty(), &args.world) {
                eprintln!(
                    "take it over with: --etcd {} --world {} --resume --lock-wait <longer than the lease TTL>",
                    args.etcd.join(","),
                    w.display()
                );
            }
            if let (Some(pg), Some(w)) = (&args.pg_lock, &args.world) {
                eprintln!("take it over with: --pg-lock {pg} --world {} --resume --lock-wait 30s", w.display());
            }
            (f.report, false)
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("cannot render the report: {e}"),
        }
    } else {
        println!("\n{}", report.to_text());
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
