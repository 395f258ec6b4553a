//! Plan values from Terraform outputs, drift, and tfvars, against the real `terraform`
//! CLI (or `tofu`: set QDR_TERRAFORM). No provider can be downloaded here, so the
//! configurations use variables, locals and the built-in `terraform_data` resource,
//! applied into a temporary folder with a local state.
//!
//! These tests need the CLI and fail when it is missing (`scripts/tools.sh` says how to
//! get it).
#![cfg(feature = "terraform")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use qovery_dr_core::SecretRef;
use qovery_dr_core::plan::{DrPlan, PlanError};
use qovery_dr_core::readiness::{CheckResult, CheckStatus, Readiness};
use qovery_dr_core::terraform::site_tfvars;
use serde_json::{Value, json};

fn terraform() -> String {
    let bin = std::env::var("QDR_TERRAFORM").unwrap_or_else(|_| "terraform".to_owned());
    let ok = Command::new(&bin).arg("version").output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{bin} version` does not run: these tests need Terraform or OpenTofu (see scripts/tools.sh; QDR_TERRAFORM names another CLI)"
    );
    bin
}

/// A folder with a plan file's place and an `infra` configuration beside it.
struct Workspace {
    root: PathBuf,
}

impl Workspace {
    fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("qdr-tf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("infra")).unwrap();
        Self { root }
    }

    fn infra(&self) -> PathBuf {
        self.root.join("infra")
    }

    /// Writes `main.tf` and applies it with `vars` (`-var NAME=VALUE`).
    fn apply(&self, main_tf: &str, vars: &[(&str, &str)]) {
        std::fs::write(self.infra().join("main.tf"), main_tf).unwrap();
        self.apply_args(&vars.iter().map(|(k, v)| format!("-var={k}={v}")).collect::<Vec<_>>());
    }

    fn apply_args(&self, args: &[String]) {
        let out = Command::new(terraform())
            .arg(format!("-chdir={}", self.infra().display()))
            .args(["apply", "-auto-approve", "-input=false", "-no-color"])
            .args(args)
            .env("TF_IN_AUTOMATION", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "terraform apply: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn outputs(&self) -> Value {
        let out = Command::new(terraform())
            .arg(format!("-chdir={}", self.infra().display()))
            .args(["output", "-json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Writes the plan (JSON) beside `infra`, and loads it.
    async fn load(&self, plan: &Value) -> Result<DrPlan, PlanError> {
        let path = self.root.join("plan.json");
        std::fs::write(&path, serde_json::to_string_pretty(plan).unwrap()).unwrap();
        DrPlan::load(&path).await
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const DR_INFRA: &str = r#"
variable "cluster_id" {
  type    = string
  default = "c2"
}
locals {
  database = { host = "db.dr.internal", port = 6432, dbname = "shop" }
}
resource "terraform_data" "cluster" {
  input = var.cluster_id
}
output "cluster_id" { value = terraform_data.cluster.output }
output "database" { value = local.database }
output "registry_hosts" { value = ["registry.dr.example.com", "mirror.dr.example.com"] }
output "db_password" {
  value     = "tf-s3cret-pw"
  sensitive = true
}
"#;

fn site(name: &str, region: &str, cluster: &str, host: &str) -> Value {
    json!({
        "name": name, "cloud": "aws", "region": region, "cluster": cluster, "environments": [format!("env-{name}")],
        "database": { "id": "db", "host": host, "port": 5432, "dbname": "shop", "user": "u" },
        "registry": { "host": format!("registry.{region}.example.com") }
    })
}

/// A plan whose DR site comes from the `dr` source (`infra` beside the plan file).
fn plan() -> Value {
    let mut dr = site("frankfurt", "eu-central-1", "tf:dr/cluster_id", "tf:dr/database.host");
    dr["database"]["port"] = json!("tf:dr/database.port");
    dr["database"]["password"] = json!("tf:dr/db_password");
    dr["registry"]["host"] = json!("tf:dr/registry_hosts[0]");
    json!({
        "name": "shop", "tier": "warm-standby", "resilience": "cross-region",
        "objectives": { "rto": "15m", "rpo": "1m" }, "replication": { "mode": "physical" },
        "terraform": { "binary": terraform(), "sources": { "dr": { "dir": "infra" } } },
        "sites": { "primary": site("paris", "eu-west-3", "c1", "db.primary.internal"), "dr": dr },
        "dns": [ { "name": "shop.example.com", "ttl": 60, "strategy": "record-swap",
                   "primary_target": "203.0.113.10", "dr_target": "198.51.100.20" } ]
    })
}

fn issues(e: PlanError) -> Vec<String> {
    e.issues().iter().map(|i| i.to_string()).collect()
}

#[tokio::test]
async fn a_plan_takes_its_dr_values_from_terraform_outputs_and_its_secret_stays_a_reference() {
    let ws = Workspace::new("resolved");
    ws.apply(DR_INFRA, &[]);
    let plan = ws.load(&plan()).await.unwrap_or_else(|e| panic!("{e}"));
    let dr = plan.dr();
    assert_eq!(dr.cluster.as_str(), "c2");
    assert_eq!((dr.database.host.as_str(), dr.database.port), ("db.dr.internal", 6432), "a number output in a port");
    assert_eq!(dr.registry.host, "registry.dr.example.com", "a list element");
    // The sensitive output is a secret reference, read when resolved, never held by the plan.
    let password = dr.database.password.clone().unwrap();
    assert!(matches!(password, SecretRef::Terraform(_)), "{password:?}");
    assert_eq!(password.to_string(), "tf:dr/db_password");
    assert!(!format!("{plan:?}").contains("tf-s3cret-pw"), "the plan never holds the secret");
    assert!(!serde_json::to_string(&plan).unwrap().contains("tf-s3cret-pw"));
    assert_eq!(password.resolve().await.unwrap().expose(), "tf-s3cret-pw");
    let fields: Vec<&str> = plan.terraform().unwrap().bindings.iter().map(|b| b.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "sites.dr.cluster",
            "sites.dr.database.host",
            "sites.dr.database.password",
            "sites.dr.database.port",
            "sites.dr.registry.host"
        ]
    );
    assert!(plan.terraform_drift().await.drifts.is_empty(), "nothing changed since the load");
    let check = readiness_check(&plan).await;
    assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
}

/// Readiness of `plan` on a healthy simulated world: its `terraform-drift` check.
async fn readiness_check(plan: &DrPlan) -> CheckResult {
    let world = qovery_dr_testkit::World::from_plan(plan);
    let report = Readiness::new(plan.clone(), world.providers()).evaluate().await;
    report.checks.into_iter().find(|c| c.id == "terraform-drift").expect("a terraform-drift check")
}

#[tokio::test]
async fn a_missing_output_a_sensitive_one_out_of_place_and_a_type_mismatch_are_named() {
    let ws = Workspace::new("problems");
    ws.apply(DR_INFRA, &[]);
    let mut p = plan();
    p["sites"]["dr"]["cluster"] = json!("tf:dr/cluster");
    p["sites"]["dr"]["name"] = json!("tf:dr/db_password");
    p["sites"]["dr"]["database"]["port"] = json!("tf:dr/cluster_id");
    p["sites"]["dr"]["database"]["dbname"] = json!("tf:other/dbname");
    let issues = issues(ws.load(&p).await.unwrap_err());
    let has = |path: &str, text: &str| {
        assert!(
            issues.iter().any(|i| i.starts_with(&format!("{path}: ")) && i.contains(text)),
            "expected {path}: …{text}… in {issues:#?}"
        )
    };
    has(
        "sites.dr.cluster",
        "no output `cluster` in source dr; its outputs: cluster_id, database, db_password, registry_hosts",
    );
    has(
        "sites.dr.name",
        "tf:dr/db_password is a sensitive output: it is accepted only where the plan expects a secret",
    );
    has(
        "sites.dr.database.port",
        "expected an integer 1-65535, got \"c2\" (the value of Terraform output tf:dr/cluster_id)",
    );
    has("sites.dr.database.dbname", "no Terraform source other (declared: dr)");
    assert!(issues.iter().all(|i| !i.contains("tf-s3cret-pw")), "a sensitive value is never shown: {issues:#?}");
}

#[tokio::test]
async fn without_the_cli_every_reference_says_what_to_install() {
    let ws = Workspace::new("no-cli");
    let mut p = plan();
    p["terraform"]["binary"] = json!("/nonexistent/terraform");
    let issues = issues(ws.load(&p).await.unwrap_err());
    assert!(
        issues.iter().any(|i| i.starts_with("sites.dr.cluster: ")
            && i.contains("/nonexistent/terraform cannot be run")
            && i.contains("install Terraform or OpenTofu")),
        "{issues:#?}"
    );
}

#[tokio::test]
async fn drift_is_reported_after_an_output_changes_with_both_values_and_sources() {
    let ws = Workspace::new("drift");
    ws.apply(DR_INFRA, &[]);
    let mut p = plan();
    // A literal the plan states twice (here, wrongly): compared with its output.
    p["sites"]["dr"]["database"]["dbname"] = json!("shop_dr");
    p["terraform"]["compare"] = json!({ "sites.dr.database.dbname": "tf:dr/database.dbname" });
    let plan = ws.load(&p).await.unwrap_or_else(|e| panic!("{e}"));
    let report = plan.terraform_drift().await;
    assert_eq!(report.drifts.len(), 1, "{}", report.to_text());
    let d = &report.drifts[0];
    assert_eq!(
        (d.field.as_str(), d.plan_value.as_str(), d.plan_source.as_str(), d.terraform_value.as_str()),
        ("sites.dr.database.dbname", "\"shop_dr\"", "the plan file", "\"shop\"")
    );

    // terraform apply moves the DR cluster: the plan loaded before still says c2.
    ws.apply(DR_INFRA, &[("cluster_id", "c3")]);
    let report = plan.terraform_drift().await;
    let d =
        report.drifts.iter().find(|d| d.field == "sites.dr.cluster").unwrap_or_else(|| panic!("{}", report.to_text()));
    assert_eq!((d.plan_value.as_str(), d.terraform_value.as_str()), ("\"c2\"", "\"c3\""));
    assert_eq!(
        (d.plan_source.as_str(), d.terraform_source.as_str()),
        ("tf:dr/cluster_id when the plan was loaded", "tf:dr/cluster_id now")
    );
    assert!(d.failover_critical, "the failover uses the DR cluster");
    assert!(
        report.to_text().contains("DRIFT (used by the failover) sites.dr.cluster: the plan says \"c2\""),
        "{}",
        report.to_text()
    );
    assert_eq!(report.compared, 5, "4 references (the secret is not compared) and 1 compare");
    // Readiness fails on it: the failover would use a cluster Terraform no longer has.
    let check = readiness_check(&plan).await;
    assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
    assert!(check.detail.contains("sites.dr.cluster: the plan says \"c2\""), "{check:?}");
    assert_eq!(check.observed, "2 of 5 field(s) differ");
    // Loaded again, the plan follows Terraform.
    assert_eq!(ws.load(&p).await.unwrap().dr().cluster.as_str(), "c3");
}

#[tokio::test]
async fn the_dr_sites_tfvars_round_trip_through_terraform() {
    let ws = Workspace::new("tfvars");
    let mut original = plan();
    original.as_object_mut().unwrap().remove("terraform");
    original["sites"]["dr"] = site("frankfurt", "eu-central-1", "c2", "db.dr.internal");
    original["sites"]["dr"]["parameters"] = json!({ "DATABASE_HOST": "db.dr.internal" });
    original["sites"]["dr"]["project"] = json!("project-2");
    let original = DrPlan::from_value(original).unwrap_or_else(|e| panic!("{e}"));
    let tfvars = site_tfvars(&original, original.dr());
    std::fs::write(ws.infra().join("dr.tfvars.json"), serde_json::to_string_pretty(&tfvars).unwrap()).unwrap();

    // A configuration that takes each value as a variable and outputs it.
    let mut main_tf = String::new();
    for key in tfvars.as_object().unwrap().keys() {
        main_tf.push_str(&format!("variable \"{key}\" {{ type = any }}\noutput \"{key}\" {{ value = var.{key} }}\n"));
    }
    std::fs::write(ws.infra().join("main.tf"), main_tf).unwrap();
    ws.apply_args(&["-var-file=dr.tfvars.json".to_owned()]);
    let outputs = ws.outputs();
    for (key, value) in tfvars.as_object().unwrap() {
        assert_eq!(&outputs[key]["value"], value, "output {key}");
    }
    assert_eq!(tfvars["databases"]["db"]["port"], json!(5432));
    assert_eq!(tfvars["dns_targets"]["shop.example.com"], json!("198.51.100.20"));

    // The same names read back as plan values: the same DR site.
    let mut p = plan();
    let dr = &mut p["sites"]["dr"];
    dr["cluster"] = json!("tf:dr/cluster_id");
    dr["region"] = json!("tf:dr/region");
    dr["project"] = json!("tf:dr/project_id");
    dr["database"]["host"] = json!("tf:dr/databases.db.host");
    dr["database"]["port"] = json!("tf:dr/databases.db.port");
    dr["database"].as_object_mut().unwrap().remove("password");
    dr["registry"]["host"] = json!("tf:dr/registry.host");
    dr["parameters"] = json!({ "DATABASE_HOST": "tf:dr/parameters.DATABASE_HOST" });
    let back = ws.load(&p).await.unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (original.dr(), back.dr());
    assert_eq!((&a.cluster, &a.region, &a.project), (&b.cluster, &b.region, &b.project));
    assert_eq!((&a.database.host, a.database.port), (&b.database.host, b.database.port));
    assert_eq!((&a.registry.host, &a.parameters), (&b.registry.host, &b.parameters));
}

#[test]
fn a_reference_without_outputs_read_names_the_way_to_load_it() {
    let e = DrPlan::from_value({
        let mut p = plan();
        p["terraform"]["sources"]["dr"]["dir"] = json!("/srv/infra");
        p
    })
    .unwrap_err();
    assert!(issues(e).iter().any(|i| i.contains("DrPlan::load")), "parse alone reads no outputs");
}

#[test]
fn the_readme_terraform_sample_loads_with_its_outputs() {
    use qovery_dr_core::terraform::TerraformOutputs;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme.find("### Values from Terraform").expect("the README section")..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let sample: Value = serde_json::to_value(toml::from_str::<toml::Value>(block).unwrap()).unwrap();
    let mut p = plan();
    p["terraform"] = sample["terraform"].clone();
    for key in ["cluster", "database"] {
        p["sites"]["dr"][key] = sample["sites"]["dr"][key].clone();
    }
    p["sites"]["dr"]["registry"]["host"] = json!("registry.dr.example.com");
    p["sites"]["primary"]["database"]["id"] = json!("shop-db");
    let outputs = TerraformOutputs::parse(
        r#"{ "cluster_id": {"value": "c2", "sensitive": false, "type": "string"},
             "region": {"value": "eu-central-1", "sensitive": false, "type": "string"},
             "database": {"value": {"host": "db.dr.internal", "port": 5432}, "sensitive": false, "type": "any"},
             "db_password": {"value": "x", "sensitive": true, "type": "string"} }"#,
    )
    .unwrap();
    let plan = DrPlan::from_value_with_outputs(p, &std::collections::BTreeMap::from([("dr".to_owned(), outputs)]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((plan.dr().cluster.as_str(), plan.dr().database.host.as_str()), ("c2", "db.dr.internal"));
    assert!(plan.terraform_drift_against(&Default::default()).drifts.is_empty());
}
