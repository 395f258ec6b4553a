//! Loads a DR plan, prints what it says and what it warns about, what
//! `qovery_dr_providers::connect` would build for it (providers, cargo features,
//! secrets referenced and whether each resolves; nothing is contacted), then
//! looks at the simulated world built from it through the four provider traits.
//!
//! ```text
//! cargo run -p qovery-dr-examples --example plan_check [-- path/to/plan.{toml,yaml,json}]
//! ```

use std::process::ExitCode;

use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::provider::{ClusterProvider, DnsSwitcher, RegistrySync, ReplicationManager};
use qovery_dr_testkit::World;
use qovery_dr_testkit::memory::{InMemoryCluster, InMemoryDns, InMemoryRegistry, InMemoryReplication};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/plans/aws-cross-region.toml").to_owned());
    let plan = match DrPlan::load(&path).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("plan {} ({path})", plan.name());
    println!("  tier {}, {}, {}", plan.tier(), plan.resilience(), plan.objectives());
    println!(
        "  replication {} (heartbeat every {})",
        plan.replication().mode,
        humantime(plan.replication().heartbeat_interval)
    );
    println!(
        "  primary {} ({} {}), DR {} ({} {})",
        plan.primary().name,
        plan.primary().cloud,
        plan.primary().region,
        plan.dr().name,
        plan.dr().cloud,
        plan.dr().region
    );
    for w in plan.warnings() {
        println!("  warning: {w}");
    }
    let connections = qovery_dr_providers::connect::inspect(&plan).await;
    println!();
    print!("{}", connections.to_text());
    println!(
        "  {}",
        if connections.ready() {
            "ready to connect (run the examples with --live)"
        } else {
            "not ready to connect: see above"
        }
    );

    let pw = World::from_plan(&plan);
    let cluster = InMemoryCluster::new(&pw.world);
    let dns = InMemoryDns::new(&pw.world);
    let repl = InMemoryReplication::new(&pw.world);
    let registry = InMemoryRegistry::new(&pw.world, plan.registry_mapping().clone());
    println!("\nsimulated world:");
    match cluster.cluster_status(&plan.dr().cluster).await {
        Ok(s) => println!("  DR cluster {}: {:?}", s.cluster, s.state),
        Err(e) => println!("  DR cluster: {e}"),
    }
    match repl.status(&plan.primary().database.id).await {
        Ok(s) => println!("  database {}: {} link {:?}, lag {:?} bytes", s.database, s.mode, s.link, s.lag_bytes),
        Err(e) => println!("  database: {e}"),
    }
    for env in &plan.primary().environments {
        for svc in cluster.list_services(env).await.unwrap_or_default() {
            if let Some(image) = svc.image {
                match registry.parity(&image).await {
                    Ok(p) => println!(
                        "  image {}: {}",
                        image.familiar(),
                        if p.is_present() { "present in DR registry" } else { "NOT in DR registry" }
                    ),
                    Err(e) => println!("  image {}: {e}", image.familiar()),
                }
            }
        }
    }
    for r in plan.dns() {
        match dns.current(&r.record).await {
            Ok(s) => println!("  DNS {} -> {} (TTL {})", s.record, s.target, humantime(s.ttl)),
            Err(e) => println!("  DNS {}: {e}", r.record),
        }
    }
    ExitCode::SUCCESS
}

fn humantime(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) { format!("{}m", secs / 60) } else { format!("{secs}s") }
}
