//! The readiness monitor as a service: evaluates a plan's readiness on an interval,
//! serves Prometheus metrics and the latest report over HTTP, notifies confirmed
//! transitions (stderr, and a webhook when given), and stops cleanly on SIGTERM or
//! Ctrl-C.
//!
//! ```text
//! cargo run -p qovery-dr-examples --features service --example monitor_service -- [options]
//! cargo run -p qovery-dr-examples --features service,live --example monitor_service -- --live --plan PATH
//!
//!   --plan PATH            the DR plan (default: examples/plans/aws-cross-region.toml)
//!   --live                 evaluate the infrastructure the plan names (needs the `live` feature)
//!   --heartbeat            with --live: also write the replication heartbeat on the primary
//!                          (otherwise the lag check reads the heartbeat your writer keeps up)
//!   --listen ADDR          where to serve (default 127.0.0.1:9464; port 0 picks a free one)
//!   --interval DURATION    between evaluations (default 30s)
//!   --confirmations N      evaluations that must agree before a change is notified (default 2)
//!   --webhook URL          POST each confirmed transition there
//!   --webhook-format F     generic (default), slack, or pagerduty (routing key from the
//!                          QDR_PAGERDUTY_ROUTING_KEY environment variable)
//!   --journal PATH         simulated world only: a file journal (as failover_drill --journal
//!                          writes) read at every evaluation for the drill cadence and the last
//!                          drill's age, RTO and RPO; with --live the plan's [state] journal is read
//!   --outage AT+FOR        simulated world only: the DR cluster fails AT after the start and
//!                          recovers FOR later (e.g. 1m+5m), to watch a transition and its recovery
//! ```
//!
//! Endpoints: `GET /metrics` (OpenMetrics text: the readiness figures and the monitor's own
//! health, see `qovery_dr_core::monitor::MonitorMetrics`), `GET /readiness` (the last
//! report as JSON: 200 when ready, 503 when not or before the first evaluation, so a load
//! balancer or an uptime probe can use it as is), `GET /healthz` (200 while the service
//! runs). The first line on stdout is `listening on http://ADDR`. The Grafana dashboard for
//! these metrics is `examples/grafana/qovery-dr-monitor.json`.
//!
//! Exit status: 0 after SIGTERM or Ctrl-C, 2 on a bad argument, a plan that does not load,
//! an address that cannot be bound or infrastructure that cannot be connected.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use qovery_dr_core::async_trait;
use qovery_dr_core::engine::FileJournal;
use qovery_dr_core::monitor::{Monitor, Notification, Notifier, NotifyError};
use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::provider::ClusterState;
use qovery_dr_core::readiness::{Readiness, ReadinessOptions};
use qovery_dr_providers::webhook::{WebhookFormat, WebhookNotifier};
use qovery_dr_testkit::World;

const USAGE: &str = "usage: monitor_service [--plan PATH] [--live [--heartbeat]] [--listen ADDR] \
                     [--interval DURATION] [--confirmations N] [--webhook URL [--webhook-format generic|slack|pagerduty]] \
                     [--journal PATH] [--outage AT+FOR]";

#[derive(Debug)]
struct Args {
    plan: String,
    live: bool,
    heartbeat: bool,
    listen: SocketAddr,
    interval: Duration,
    confirmations: u32,
    webhook: Option<url::Url>,
    format: String,
    outage: Option<(Duration, Duration)>,
    journal: Option<std::path::PathBuf>,
}

fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{flag} {text:?}: {e} (e.g. 30s, 2m)"))
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        plan: concat!(env!("CARGO_MANIFEST_DIR"), "/plans/aws-cross-region.toml").to_owned(),
        live: false,
        heartbeat: false,
        listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        interval: Duration::from_secs(30),
        confirmations: 2,
        webhook: None,
        format: "generic".to_owned(),
        outage: None,
        journal: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--plan" => args.plan = value("--plan")?,
            "--live" => args.live = true,
            "--heartbeat" => args.heartbeat = true,
            "--listen" => {
                let text = value("--listen")?;
                args.listen = text
                    .parse()
                    .map_err(|e| format!("--listen {text:?}: {e} (an address and port, e.g. 127.0.0.1:9464)"))?;
            }
            "--interval" => {
                args.interval = duration("--interval", &value("--interval")?)?;
                if args.interval.is_zero() {
                    return Err("--interval must be longer than zero".into());
                }
            }
            "--confirmations" => {
                let text = value("--confirmations")?;
                args.confirmations = match text.parse::<u32>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(format!("--confirmations {text:?}: a whole number, at least 1")),
                };
            }
            "--webhook" => {
                let text = value("--webhook")?;
                let url = url::Url::parse(&text).map_err(|e| format!("--webhook: not a URL ({e})"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!("--webhook: an http or https URL, not {}:", url.scheme()));
                }
                args.webhook = Some(url);
            }
            "--webhook-format" => args.format = value("--webhook-format")?,
            "--journal" => args.journal = Some(value("--journal")?.into()),
            "--outage" => {
                let text = value("--outage")?;
                let Some((at, length)) = text.split_once('+') else {
                    return Err(format!("--outage {text:?}: AT+FOR, e.g. 1m+5m"));
                };
                args.outage = Some((duration("--outage", at)?, duration("--outage", length)?));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.heartbeat && !args.live {
        return Err("--heartbeat writes the heartbeat on the plan's real primary: it needs --live".into());
    }
    if args.outage.is_some() && args.live {
        return Err("--outage acts on the simulated world; it cannot be used with --live".into());
    }
    if args.journal.is_some() && args.live {
        return Err("--journal is for the simulated world; with --live the plan's [state] journal is read".into());
    }
    if args.webhook.is_none() && args.format != "generic" {
        return Err("--webhook-format needs --webhook".into());
    }
    Ok(args)
}

fn webhook_format(name: &str) -> Result<WebhookFormat, String> {
    match name {
        "generic" => Ok(WebhookFormat::Generic),
        "slack" => Ok(WebhookFormat::Slack),
        "pagerduty" => match std::env::var("QDR_PAGERDUTY_ROUTING_KEY") {
            Ok(key) if !key.is_empty() => {
                Ok(WebhookFormat::PagerDuty { routing_key: qovery_dr_core::SecretString::new(key) })
            }
            _ => {
                Err("--webhook-format pagerduty reads the routing key from QDR_PAGERDUTY_ROUTING_KEY, which is not set"
                    .into())
            }
        },
        other => Err(format!("--webhook-format {other:?}: generic, slack or pagerduty")),
    }
}

/// Every confirmed transition on stderr, then to the webhook when there is one.
#[derive(Debug)]
struct Notify {
    webhook: Option<WebhookNotifier>,
}

#[async_trait]
impl Notifier for Notify {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        eprintln!("transition: {}", n.summary());
        match &self.webhook {
            Some(hook) => hook.notify(n).await,
            None => Ok(()),
        }
    }
}

async fn metrics(State(monitor): State<Arc<Monitor>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], monitor.metrics().encode())
        .into_response()
}

fn json(status: StatusCode, body: Result<String, serde_json::Error>) -> Response {
    match body {
        Ok(text) => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the report: {e}\n")).into_response(),
    }
}

async fn readiness(State(monitor): State<Arc<Monitor>>) -> Response {
    let Some(report) = monitor.latest() else {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::to_string_pretty(&serde_json::json!({"error": "no evaluation has completed yet"})),
        );
    };
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, serde_json::to_string_pretty(report.as_ref()))
}

/// What the monitor evaluates, and what must live as long as it does.
struct Target {
    readiness: Readiness,
    _keep: Box<dyn std::any::Any + Send>,
}

async fn live_target(plan: DrPlan, heartbeat: bool, options: ReadinessOptions) -> Result<Target, String> {
    let connected = qovery_dr_examples::connect_live(&plan).await?;
    let mut readiness = Readiness::new(plan, connected.providers.clone()).options(options);
    if let Some((lock, journal)) = &connected.state {
        readiness = readiness.lock(Arc::clone(lock)).journal(Arc::clone(journal));
    }
    let keep: Box<dyn std::any::Any + Send> = if heartbeat {
        #[cfg(feature = "live")]
        {
            let writer = connected.start_heartbeat().await.map_err(|e| format!("cannot start the heartbeat: {e}"))?;
            Box::new((connected, writer))
        }
        #[cfg(not(feature = "live"))]
        {
            return Err("--heartbeat needs the live feature".into());
        }
    } else {
        Box::new(connected)
    };
    Ok(Target { readiness, _keep: keep })
}

fn simulated_target(args: &Args, plan: DrPlan, options: ReadinessOptions) -> Target {
    let sim = World::from_plan(&plan);
    sim.world.use_real_wall_clock();
    if let Some((at, length)) = args.outage {
        let world = sim.world.clone();
        let cluster = plan.dr().cluster.clone();
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            eprintln!("simulated outage: the DR cluster {cluster} fails");
            world.set_cluster_state(&cluster, ClusterState::Error);
            tokio::time::sleep(length).await;
            eprintln!("simulated outage: the DR cluster {cluster} recovers");
            world.set_cluster_state(&cluster, ClusterState::Running);
        });
    }
    let mut readiness = Readiness::new(plan, sim.providers()).clock(Arc::new(sim.world.clone())).options(options);
    if let Some(path) = &args.journal {
        readiness = readiness.journal(Arc::new(FileJournal::new(path)));
    }
    Target { readiness, _keep: Box::new(sim) }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let webhook = match &args.webhook {
        Some(url) => match webhook_format(&args.format) {
            Ok(format) => Some(WebhookNotifier::new(url.clone(), format)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let plan = match DrPlan::load(&args.plan).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Bind before connecting: a port already taken is the commonest start-up mistake.
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let options = ReadinessOptions { concurrency: 8, rate_per_second: Some(50.0), ..ReadinessOptions::default() };
    let target = if args.live {
        match live_target(plan, args.heartbeat, options).await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        simulated_target(&args, plan, options)
    };
    let monitor = Arc::new(
        Monitor::new(target.readiness, Arc::new(Notify { webhook }), args.interval).confirmations(args.confirmations),
    );
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/readiness", get(readiness))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Arc::clone(&monitor));
    let address = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: the listening socket has no address: {e}");
            return ExitCode::from(2);
        }
    };
    println!("listening on http://{address}");
    eprintln!(
        "monitoring every {} ({} confirmation(s) before a notification); /metrics, /readiness, /healthz",
        humantime::format_duration(args.interval),
        args.confirmations
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let server =
        tokio::spawn(axum::serve(listener, app).with_graceful_shutdown(stopped(stop_rx.clone())).into_future());
    let evaluating = tokio::spawn({
        let monitor = Arc::clone(&monitor);
        let stop = stopped(stop_rx);
        async move { monitor.run(stop).await }
    });
    qovery_dr_examples::stop_signal().await;
    eprintln!("stopping");
    let _ = stop_tx.send(true);
    // In-flight requests get a moment to finish; a client holding a connection open does
    // not hold the service up.
    let drained = tokio::time::timeout(Duration::from_millis(500), async {
        let _ = evaluating.await;
        server.await
    })
    .await;
    match drained {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("warning: the HTTP server stopped with an error: {e}"),
        Ok(Err(e)) => eprintln!("warning: the HTTP server task failed: {e}"),
        Err(_) => eprintln!("warning: requests still open after 500 ms were cut"),
    }
    eprintln!("stopped");
    drop(target._keep);
    ExitCode::SUCCESS
}
