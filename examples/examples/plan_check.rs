//! Loads a DR plan, prints what it says and what it warns about, what
//! `qovery_dr_providers::connect` would build for it (providers, cargo features,
//! secrets referenced and whether each resolves; nothing is contacted), then
//! looks at the simulated world built from it through the four provider traits.
//!
//! With `[terraform]`, it also prints the fields tied to Terraform outputs and the drift
//! between them and the outputs now. `--dr-tfvars FILE` writes the DR site's values as
//! a `.tfvars.json` for its Terraform (exit status 1 on drift in a field the failover uses).
//!
//! ```text
//! cargo run -p qovery-dr-examples --example plan_check [-- path/to/plan.{toml,yaml,json}] [--dr-tfvars dr.tfvars.json]
//! ```

use std::process::ExitCode;

use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::provider::{ClusterProvider, DnsSwitcher, RegistrySync, ReplicationManager};
use qovery_dr_testkit::World;
use qovery_dr_testkit::memory::{InMemoryCluster, InMemoryDns, InMemoryRegistry, InMemoryReplication};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut path, mut tfvars) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dr-tfvars" => match args.next() {
                Some(f) => tfvars = Some(f),
                None => {
                    eprintln!("--dr-tfvars needs a file name");
                    return ExitCode::FAILURE;
                }
            },
            _ => path = Some(a),
        }
    }
    let path = path.unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/plans/aws-cross-region.toml").to_owned());
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
    let mut drift_fails = false;
    if let Some(tf) = plan.terraform() {
        println!();
        for s in &tf.sources {
            println!("terraform source {}: {}", s.name, s.command_line());
        }
        for b in &tf.bindings {
            let how = if b.from_output { "takes its value from" } else { "is compared with" };
            println!("  {} {how} {}", b.field, b.reference);
        }
        let drift = plan.terraform_drift().await;
        print!("{}", drift.to_text());
        drift_fails = drift.drifts.iter().any(|d| d.failover_critical);
    }
    if let Some(file) = &tfvars {
        let vars = qovery_dr_core::terraform::site_tfvars(&plan, plan.dr());
        let text = serde_json::to_string_pretty(&vars).unwrap_or_default();
        if let Err(e) = std::fs::write(file, text + "\n") {
            eprintln!("{file}: {e}");
            return ExitCode::FAILURE;
        }
        println!("wrote the DR site's values to {file} (no secrets: Terraform reads those from its own store)");
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

    println!();
    print!("{}", qovery_dr_core::stability::StabilityReport::for_plan(&plan).to_text());

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
    if drift_fails {
        eprintln!("drift in a field the failover uses: see \"terraform drift\" above");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn humantime(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) { format!("{}m", secs / 60) } else { format!("{secs}s") }
}
