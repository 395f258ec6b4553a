//! Every peer a failover touches, on 127.0.0.1, and the plan that describes
//! them: run the other examples with `--live --plan <that plan>` against it.
//!
//! ```text
//! cargo run -p qovery-dr-examples --features local-stack --example local_stack -- [options]
//!   --dir PATH        where to write the plan and its secret files (default: $TMPDIR/qdr-local-stack)
//!   --logical         a logical publisher/subscriber pair instead of a physical standby
//!   --route53         api.example.com on moto's Route53 instead of the Cloudflare fake
//!   --not-mirrored    the DR registry starts empty (the failover copies the images)
//! ```
//!
//! It starts the Qovery fake (two sites, three services per environment, deploys that
//! take ~2 s, one deployment per environment at a time), a PostgreSQL 15 primary and
//! standby with pgbench tables, two docker-registry servers, two Knot servers for
//! `qdr.test` and the Cloudflare fake (or moto), then prints the plan's path and the
//! command to run, and keeps everything up until Ctrl-C (or SIGTERM).
//! The binaries come from `scripts/tools.sh` (run `./scripts/test` once, or source it).

use std::path::PathBuf;
use std::process::ExitCode;

use qovery_dr_testkit::local_stack::{LocalStack, LocalStackOptions};

fn parse() -> Result<LocalStackOptions, String> {
    let mut options = LocalStackOptions::default();
    let mut dir = std::env::temp_dir().join("qdr-local-stack");
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => dir = PathBuf::from(it.next().ok_or("--dir needs a path")?),
            "--logical" => options = options.logical(),
            "--route53" => options = options.route53(),
            "--not-mirrored" => options = options.mirrored(false),
            "--help" | "-h" => return Err("help".into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options.dir(dir))
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("usage: local_stack [--dir PATH] [--logical] [--route53] [--not-mirrored]");
            return ExitCode::from(2);
        }
    };
    eprintln!("starting the local stack (PostgreSQL, registries, Knot, the Qovery and DNS fakes)...");
    let stack = match LocalStack::start(options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the local stack did not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let plan = match stack.write_plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: writing the plan: {e}");
            return ExitCode::FAILURE;
        }
    };
    let [knot_a, knot_b] = stack.knot.servers();
    println!("local stack up on 127.0.0.1:");
    println!("  Qovery fake       {}", stack.qovery.uri());
    println!(
        "  PostgreSQL        primary :{}  standby :{} ({:?})",
        stack.primary.port, stack.standby.port, stack.options.replication
    );
    println!("  registries        {} (primary)  {} (DR)", stack.registry_a.url(), stack.registry_b.url());
    println!("  Knot (qdr.test)   {knot_a} (primary)  {knot_b} (secondary)");
    println!("  api.example.com   {:?}", stack.options.api_dns);
    for (k, v) in stack.aws_env() {
        println!("  export {k}={v}");
    }
    println!("plan: {}", plan.display());
    println!("run, in another terminal:");
    println!(
        "  cargo run -p qovery-dr-examples --features live --example failover_drill -- --live --plan {} --yes --no-ttl-drain",
        plan.display()
    );
    println!("Ctrl-C stops the stack.");
    let stopped = wait_for_stop().await;
    drop(stack);
    eprintln!("local stack stopped ({stopped})");
    ExitCode::SUCCESS
}

/// Waits for Ctrl-C or SIGTERM; says which.
async fn wait_for_stop() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "Ctrl-C";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}
