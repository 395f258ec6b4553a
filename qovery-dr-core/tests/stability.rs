//! The static-stability lint on the example plans, with the expected findings written
//! out, and on plans and declarations that break its rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use qovery_dr_core::engine::{EngineOptions, LiveFacts, RunMode, Runbook};
use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_core::stability::{Impact, Location, PlaneMap, Planes, Scenario, StabilityReport, catalogue, lint};

fn text(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../examples/plans/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn plan(name: &str) -> DrPlan {
    let format = if name.ends_with(".yaml") { PlanFormat::Yaml } else { PlanFormat::Toml };
    DrPlan::parse(&text(name), format).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The Qovery steps of a failover of one environment `env` (a full deploy).
fn qovery_steps(env: &str) -> Vec<String> {
    [
        "preflight qovery.cluster_status".to_owned(),
        "preflight qovery.environment_status".to_owned(),
        format!("parameters:{env} qovery.set_variable"),
        format!("image:{env}/each service qovery.set_service_image"),
        format!("deploy:{env} qovery.deploy_environment"),
        format!("deploy:{env} qovery.deployment_status"),
        format!("verify:{env} qovery.environment_status"),
    ]
    .into_iter()
    .map(|s| format!("qovery-api-down blocks {s}"))
    .collect()
}

fn expect(report: &StabilityReport, primary_region: &[&str], qovery_env: &str, dns: &[&str]) {
    let mut expected: Vec<String> = primary_region.iter().map(|s| format!("primary-region-down {s}")).collect();
    expected.extend(qovery_steps(qovery_env));
    expected.extend(dns.iter().map(|s| format!("dns-control-plane-down {s}")));
    assert_eq!(report.lines(), expected, "{}", report.to_text());
}

#[test]
fn the_aws_cross_region_plan() {
    let report = StabilityReport::for_plan(&plan("aws-cross-region.toml"));
    expect(
        &report,
        &[
            "degrades preflight postgres.status",
            "degrades fence-primary postgres.fence_primary",
            // The primary's ECR is a regional service of eu-west-3.
            "blocks sync-images registry.copy_all",
        ],
        "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a02",
        // Failover routing with health checks: Route53's data plane fails over by itself.
        &[
            "degrades health:shop.example.com route53.target_health",
            "degrades health:api.shop.example.com route53.target_health",
            "degrades dns:shop.example.com route53.switch",
            "degrades dns:shop.example.com route53.change_status",
            "degrades dns:api.shop.example.com route53.switch",
            "degrades dns:api.shop.example.com route53.change_status",
        ],
    );
    let images = &report.findings_for(Scenario::PrimaryRegionDown)[2];
    assert_eq!(images.plane.location, Location::Region { region: "eu-west-3".into() });
    assert!(images.instead.contains("point the DR environments at those images"), "{}", images.instead);
    assert!(report.findings_for(Scenario::QoveryApiDown).iter().all(|f| f.instead.contains("dns_only = true")));
    assert!(report.blocks(Scenario::PrimaryRegionDown) && !report.blocks(Scenario::DnsControlPlaneDown));
    assert_eq!(report.summary(Scenario::DnsControlPlaneDown), "dns-control-plane-down: no step blocked, 6 degraded");
    assert!(report.unplaced.is_empty() && report.undeclared.is_empty(), "{report:?}");
}

#[test]
fn the_scaleway_to_aws_plan() {
    let report = StabilityReport::for_plan(&plan("scaleway-to-aws.yaml"));
    expect(
        &report,
        &[
            // The dump strategy's status reads the store and the DR server, not the primary.
            "degrades fence-primary postgres-dump.fence_primary",
            "blocks sync-images registry.copy_all",
        ],
        "7a6b5c4d-0000-4000-8000-0000000aws01",
        // A load-balancer pool with health monitors.
        &[
            "degrades health:shop.example.org cloudflare.target_health",
            "degrades dns:shop.example.org cloudflare.switch",
            "degrades dns:shop.example.org cloudflare.change_status",
        ],
    );
    let unplaced: Vec<(String, Vec<String>)> =
        report.unplaced.iter().map(|(p, s)| (p.service.clone(), s.clone())).collect();
    assert_eq!(
        unplaced,
        [
            ("dump store".to_owned(), vec!["preflight".to_owned(), "promote-database".to_owned()]),
            ("etcd (lock and journal)".to_owned(), vec!["lock".to_owned(), "record".to_owned()]),
        ]
    );
}

#[test]
fn the_self_hosted_dns_plan() {
    let report = StabilityReport::for_plan(&plan("self-hosted-dns.toml"));
    expect(
        &report,
        &[
            "degrades preflight postgres.status",
            "degrades fence-primary postgres.fence_primary",
            "blocks sync-images registry.copy_all",
        ],
        "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a12",
        // One primary server takes every update.
        &["blocks dns:shop.example.net rfc2136.switch", "blocks dns:shop.example.net rfc2136.change_status"],
    );
    assert_eq!(report.unplaced.len(), 1);
    assert_eq!(report.unplaced[0].0.location, Location::Endpoint { address: "192.0.2.53:53".into() });
    let text = report.to_text();
    assert!(text.contains("not placed: DNS primary server 192.0.2.53:53"), "{text}");
}

#[test]
fn a_pre_deployed_dr_site_still_needs_the_qovery_api_to_verify_it() {
    let hot = format!("{}\n[failover]\ndns_only = true\n", text("aws-cross-region.toml"));
    let plan = DrPlan::parse(&hot, PlanFormat::Toml).unwrap();
    assert!(plan.failover().dns_only);
    let report = StabilityReport::for_plan(&plan);
    let qovery: Vec<&str> = report.findings_for(Scenario::QoveryApiDown).iter().map(|f| f.step.as_str()).collect();
    assert!(!qovery.iter().any(|s| s.starts_with("deploy:")), "nothing deployed: {qovery:?}");
    assert!(qovery.iter().any(|s| s.starts_with("verify-dr-config:")), "{qovery:?}");
    assert!(report.findings_for(Scenario::QoveryApiDown)[0].instead.contains("verify the DR site by hand"));
    assert!(!report.findings.iter().any(|f| f.step == "sync-images"), "no image copied");
}

#[test]
fn a_cross_az_plan_does_not_survive_its_region() {
    // The DR site in the primary's region: its own database server goes down too.
    let plan = plan("aws-cross-region.toml");
    let same = text("aws-cross-region.toml")
        .replace(&format!("\"{}\"", plan.dr().region), "\"eu-west-3\"")
        .replace("resilience = \"cross-region\"", "resilience = \"cross-az\"");
    let plan = DrPlan::parse(&same, PlanFormat::Toml).unwrap();
    assert_eq!(plan.dr().region, plan.primary().region);
    let report = StabilityReport::for_plan(&plan);
    let promote = report
        .findings_for(Scenario::PrimaryRegionDown)
        .into_iter()
        .find(|f| f.step == "promote-database")
        .unwrap_or_else(|| panic!("{}", report.to_text()));
    assert_eq!(promote.impact, Impact::Blocks);
    assert!(promote.instead.contains("does not survive the region"), "{}", promote.instead);
}

/// Declarations that break the rules: a provider declaring nothing, one forgetting an
/// operation. Neither is taken as "depends on nothing".
#[test]
fn undeclared_providers_and_operations_are_listed_never_passed() {
    let plan = plan("aws-cross-region.toml");
    let runbook = Runbook::build(&plan, RunMode::Failover, &LiveFacts::default(), &EngineOptions::default());
    let mut planes = PlaneMap::from_plan(&plan);
    planes.cluster = Planes::undeclared("my-cluster");
    let report = lint(&plan, &runbook, &planes);
    assert!(report.findings_for(Scenario::QoveryApiDown).is_empty());
    assert!(
        report
            .undeclared
            .contains(&"preflight (my-cluster.cluster_status: the provider declares no planes)".to_owned()),
        "{:?}",
        report.undeclared
    );

    // Declared, minus one operation.
    let mut planes = PlaneMap::from_plan(&plan);
    let mut partial = Planes::new("qovery");
    for (op, p) in catalogue::qovery().operations() {
        if op != "deploy_environment" {
            partial = partial.op(op, p.iter().cloned());
        }
    }
    planes.cluster = partial;
    let report = lint(&plan, &runbook, &planes);
    let env = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a02";
    assert!(
        report.undeclared.contains(&format!("deploy:{env} (qovery.deploy_environment not declared)")),
        "{:?}",
        report.undeclared
    );
    assert!(report.to_text().contains(&format!("not checked: deploy:{env} (qovery.deploy_environment not declared)")));
}

#[test]
fn the_runbook_document_shows_the_lint() {
    let plan = plan("self-hosted-dns.toml");
    let runbook = Runbook::build(&plan, RunMode::Failover, &LiveFacts::default(), &EngineOptions::default());
    let doc = qovery_dr_core::document::runbook_markdown(&plan, &runbook);
    let section = doc.split("## Static stability").nth(1).unwrap_or_else(|| panic!("{doc}"));
    assert!(section.contains("### `dns-control-plane-down`"), "{section}");
    assert!(section.contains("| `dns:shop.example.net` | `rfc2136.switch` |"), "{section}");
    assert!(section.contains("Not placed: DNS primary server 192.0.2.53:53"), "{section}");
}
