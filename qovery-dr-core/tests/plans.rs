//! Plan loading: the example plans load, and invalid plans are refused with
//! messages naming the field path and what was expected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use qovery_dr_core::plan::{DrPlan, PlanError, PlanFormat};
use qovery_dr_core::provider::{ReplicationMode, SwitchStrategy};
use qovery_dr_core::{ResilienceLevel, SecretRef, Tier};
use serde_json::{Value, json};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/plans").join(name)
}

fn base() -> Value {
    json!({
        "name": "shop",
        "tier": "warm-standby",
        "resilience": "cross-region",
        "objectives": { "rto": "15m", "rpo": "1m" },
        "replication": { "mode": "physical" },
        "sites": {
            "primary": {
                "name": "paris", "cloud": "aws", "region": "eu-west-3", "cluster": "c1",
                "environments": ["e1"],
                "database": { "id": "db", "host": "db1", "port": 5432, "dbname": "shop", "user": "u", "password": "env:P1" },
                "registry": { "host": "r1.example.com" }
            },
            "dr": {
                "name": "frankfurt", "cloud": "aws", "region": "eu-central-1", "cluster": "c2",
                "environments": ["e2"],
                "database": { "id": "db", "host": "db2", "port": 5432, "dbname": "shop", "user": "u" },
                "registry": { "host": "r2.example.com" }
            }
        },
        "dns": [ { "name": "shop.example.com", "ttl": 60, "strategy": "record-swap", "primary_target": "1.1.1.1", "dr_target": "2.2.2.2" } ]
    })
}

/// Applies `f` to the base plan and returns the single-or-many issues as "path: message" lines.
fn invalid(f: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut v = base();
    f(&mut v);
    match DrPlan::from_value(v) {
        Ok(_) => panic!("plan unexpectedly valid"),
        Err(e @ PlanError::Invalid(_)) => e.issues().iter().map(|i| i.to_string()).collect(),
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

fn assert_issue(issues: &[String], path: &str, expectation: &str) {
    assert!(
        issues.iter().any(|i| i.starts_with(&format!("{path}: ")) && i.contains(expectation)),
        "expected an issue at {path} containing {expectation:?}, got {issues:#?}"
    );
}

fn set(v: &mut Value, pointer: &str, new: Value) {
    *v.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = new;
}

#[test]
fn the_base_plan_is_valid() {
    let plan = DrPlan::from_value(base()).unwrap();
    assert_eq!(plan.objectives().rto, Duration::from_secs(900));
    assert_eq!(plan.dr().dns_targets.values().next().unwrap().as_str(), "2.2.2.2");
}

#[tokio::test]
async fn aws_cross_region_example_loads() {
    let plan = DrPlan::load(example("aws-cross-region.toml")).await.unwrap();
    assert_eq!(plan.tier(), Tier::WarmStandby);
    assert_eq!(plan.resilience(), ResilienceLevel::CrossRegion);
    assert_eq!(plan.replication().mode, ReplicationMode::Logical);
    assert_eq!(plan.dns().len(), 2);
    assert_eq!(plan.dns()[0].strategy, SwitchStrategy::FailoverRouting);
    assert_eq!(plan.dr().region, "eu-central-1");
    assert_eq!(plan.primary().database.password, Some(SecretRef::Env("PRIMARY_DB_PASSWORD".into())));
    let img = "123456789012.dkr.ecr.eu-west-3.amazonaws.com/shop/api:v1".parse().unwrap();
    assert_eq!(
        plan.registry_mapping().remap(&img).unwrap().to_string(),
        "123456789012.dkr.ecr.eu-central-1.amazonaws.com/shop/api:v1"
    );
    assert!(plan.warnings().is_empty(), "{:?}", plan.warnings());
}

#[tokio::test]
async fn scaleway_to_aws_example_loads() {
    let plan = DrPlan::load(example("scaleway-to-aws.yaml")).await.unwrap();
    assert_eq!(plan.resilience(), ResilienceLevel::CrossCloud);
    assert_eq!(plan.replication().mode, ReplicationMode::Dump);
    assert_eq!(plan.replication().dump_interval, Some(Duration::from_secs(900)));
    assert_eq!(plan.dns()[0].strategy, SwitchStrategy::LoadBalancerPool);
    match &plan.dns()[0].provider {
        Some(qovery_dr_core::plan::DnsProviderPlan::Cloudflare { token, .. }) => {
            assert_eq!(token, &SecretRef::File("/run/secrets/cloudflare-token".into()))
        }
        other => panic!("{other:?}"),
    }
    assert!(plan.credentials().is_empty());
    let img = "rg.fr-par.scw.cloud/shop-namespace/web:2.3".parse().unwrap();
    assert_eq!(
        plan.registry_mapping().remap(&img).unwrap().to_string(),
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:2.3"
    );
}

#[test]
fn all_three_formats_give_the_same_plan() {
    let v = base();
    let from_json = DrPlan::parse(&v.to_string(), PlanFormat::Json).unwrap();
    let yaml = serde_yaml_ng::to_string(&v).unwrap();
    let from_yaml = DrPlan::parse(&yaml, PlanFormat::Yaml).unwrap();
    let toml_text = toml::to_string(&v).unwrap();
    let from_toml = DrPlan::parse(&toml_text, PlanFormat::Toml).unwrap();
    assert_eq!(from_json, from_yaml);
    assert_eq!(from_json, from_toml);
}

#[test]
fn port_must_be_an_integer_in_range() {
    let issues = invalid(|v| set(v, "/sites/dr/database/port", json!("abc")));
    assert_issue(&issues, "sites.dr.database.port", r#"expected an integer 1-65535, got "abc""#);
    let issues = invalid(|v| set(v, "/sites/primary/database/port", json!(70000)));
    assert_issue(&issues, "sites.primary.database.port", "expected an integer 1-65535, got 70000");
}

#[test]
fn port_message_is_the_same_in_toml() {
    let text = std::fs::read_to_string(example("aws-cross-region.toml")).unwrap();
    let bad = text.replacen(
        "port = 5432\ndbname = \"shop\"\nuser = \"dr_orchestrator\"\npassword = \"env:DR_DB_PASSWORD\"",
        "port = \"abc\"\ndbname = \"shop\"\nuser = \"dr_orchestrator\"\npassword = \"env:DR_DB_PASSWORD\"",
        1,
    );
    assert_ne!(bad, text);
    let err = DrPlan::parse(&bad, PlanFormat::Toml).unwrap_err().to_string();
    assert!(err.contains(r#"sites.dr.database.port: expected an integer 1-65535, got "abc""#), "{err}");
}

#[test]
fn durations_must_be_human_durations() {
    let issues = invalid(|v| set(v, "/objectives/rto", json!(15)));
    assert_issue(&issues, "objectives.rto", "expected a duration like \"15m\"");
    let issues = invalid(|v| set(v, "/objectives/rpo", json!("soon")));
    assert_issue(&issues, "objectives.rpo", "got \"soon\"");
}

#[test]
fn unknown_tier_lists_the_valid_ones() {
    let issues = invalid(|v| set(v, "/tier", json!("gold")));
    assert_issue(&issues, "tier", "expected one of `backup-restore`, `pilot-light`, `warm-standby`, `active-active`");
}

#[test]
fn misspelt_field_is_named() {
    let mut v = base();
    v["sites"]["dr"].as_object_mut().unwrap().insert("regoin".into(), json!("x"));
    let issues = match DrPlan::from_value(v) {
        Err(e) => e.issues().iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        Ok(_) => panic!("valid"),
    };
    assert_issue(&issues, "sites.dr.regoin", "unknown field `regoin`, expected one of `name`, `cloud`, `region`");
}

#[test]
fn missing_field_is_named() {
    let issues = invalid(|v| {
        v["sites"]["dr"].as_object_mut().unwrap().remove("cluster");
    });
    assert_issue(&issues, "sites.dr", "missing field `cluster`");
}

#[test]
fn the_two_sites_must_differ() {
    let issues = invalid(|v| set(v, "/sites/dr/cluster", json!("c1")));
    assert_issue(&issues, "sites.dr.cluster", "expected a cluster different from sites.primary.cluster");
    let issues = invalid(|v| set(v, "/sites/dr/database/host", json!("db1")));
    assert_issue(&issues, "sites.dr.database.host", "expected a database different from the primary's");
    let issues = invalid(|v| set(v, "/sites/dr/environments", json!(["e1"])));
    assert_issue(&issues, "sites.dr.environments[0]", "expected an environment distinct from the primary site's");
}

#[test]
fn cross_region_needs_two_regions() {
    let issues = invalid(|v| set(v, "/sites/dr/region", json!("eu-west-3")));
    assert_issue(&issues, "sites.dr.region", "expected a region different from the primary's");
}

#[test]
fn cross_cloud_needs_two_clouds() {
    let issues = invalid(|v| set(v, "/resilience", json!("cross-cloud")));
    assert_issue(&issues, "sites.dr.cloud", "expected a cloud different from the primary's");
}

#[test]
fn objectives_must_fit_the_tier() {
    let issues = invalid(|v| set(v, "/objectives/rto", json!("30s")));
    assert_issue(&issues, "objectives.rto", "expected at least 1m for tier warm-standby");
    let issues = invalid(|v| {
        set(v, "/tier", json!("backup-restore"));
        set(v, "/objectives/rpo", json!("5m"));
        set(v, "/objectives/rto", json!("4h"));
    });
    assert_issue(&issues, "objectives.rpo", "expected at least 1h for tier backup-restore");
}

#[test]
fn a_daily_dump_cannot_meet_a_one_minute_rpo() {
    let issues = invalid(|v| set(v, "/replication", json!({ "mode": "dump", "dump_interval": "1day" })));
    assert_issue(&issues, "replication.dump_interval", "expected at most the RPO (1m), got 1day");
}

#[test]
fn dump_mode_needs_an_interval_and_others_refuse_one() {
    let issues = invalid(|v| set(v, "/replication", json!({ "mode": "dump" })));
    assert_issue(&issues, "replication.dump_interval", "expected a dump interval");
    let issues = invalid(|v| set(v, "/replication", json!({ "mode": "logical", "dump_interval": "1m" })));
    assert_issue(&issues, "replication.dump_interval", "expected no dump interval for mode logical");
}

#[test]
fn heartbeat_must_be_finer_than_the_rpo() {
    let issues = invalid(|v| set(v, "/replication", json!({ "mode": "physical", "heartbeat_interval": "5m" })));
    assert_issue(&issues, "replication.heartbeat_interval", "expected at most the RPO (1m), got 5m");
}

#[test]
fn a_ttl_longer_than_the_rto_is_an_error() {
    let issues = invalid(|v| set(v, "/dns/0/ttl", json!(3600)));
    assert_issue(&issues, "dns[0].ttl", "expected a TTL at most the RTO (15m), got 1h");
    let issues = invalid(|v| set(v, "/dns/0/ttl", json!("60")));
    assert_issue(&issues, "dns[0].ttl", "expected a TTL as an integer number of seconds");
}

#[test]
fn dns_targets_must_differ_and_records_be_unique() {
    let issues = invalid(|v| set(v, "/dns/0/dr_target", json!("1.1.1.1")));
    assert_issue(&issues, "dns[0].dr_target", "expected a target different from primary_target");
    let issues = invalid(|v| {
        let r = v["dns"][0].clone();
        v["dns"].as_array_mut().unwrap().push(r);
    });
    assert_issue(&issues, "dns[1].name", "expected each record once");
}

#[test]
fn unknown_strategy_lists_the_valid_ones() {
    let issues = invalid(|v| set(v, "/dns/0/strategy", json!("geo")));
    assert_issue(
        &issues,
        "dns[0].strategy",
        "expected one of `record-swap`, `failover-routing`, `weighted`, `load-balancer-pool`",
    );
}

#[test]
fn inline_secrets_are_refused_and_not_echoed() {
    let issues = invalid(|v| set(v, "/sites/primary/database/password", json!("hunter2-super-secret")));
    assert_issue(&issues, "sites.primary.database.password", "expected a secret reference `env:NAME` or `file:PATH`");
    assert!(issues.iter().all(|i| !i.contains("hunter2")), "{issues:?}");
    let issues = invalid(|v| set(v, "/sites/primary/database/password", json!(123456)));
    assert!(issues.iter().all(|i| !i.contains("123456")), "{issues:?}");
    let issues = invalid(|v| {
        v.as_object_mut().unwrap().insert("credentials".into(), json!({ "qovery_token": "qov_t_abcdef" }));
    });
    assert_issue(&issues, "credentials.qovery_token", "expected a secret reference");
    assert!(issues.iter().all(|i| !i.contains("qov_t_abcdef")), "{issues:?}");
}

#[test]
fn same_registry_is_refused_across_regions() {
    let issues = invalid(|v| set(v, "/sites/dr/registry/host", json!("r1.example.com")));
    assert_issue(&issues, "sites.dr.registry.host", "expected a DR registry different from the primary one");
    assert_issue(&issues, "sites.dr.registry.host", "set failover.single_global_registry = true");
    let issues = invalid(|v| set(v, "/sites/dr/registry/host", json!("not a host")));
    assert_issue(&issues, "sites.dr.registry", "expected a registry host[:port]");
}

#[test]
fn one_global_registry_is_allowed_when_the_plan_says_so_with_a_warning_naming_its_risk() {
    let mut v = base();
    set(&mut v, "/sites/dr/registry/host", json!("r1.example.com"));
    v.as_object_mut().unwrap().insert("failover".into(), json!({ "single_global_registry": true }));
    let plan = DrPlan::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.failover().single_global_registry);
    let w = plan.warnings().iter().find(|w| w.path == "failover.single_global_registry").expect("a warning");
    assert!(w.message.contains("r1.example.com") && w.message.contains("cannot pull images"), "{w}");
    // The option with two registries contradicts itself.
    let issues = invalid(|v| {
        v.as_object_mut().unwrap().insert("failover".into(), json!({ "single_global_registry": true }));
    });
    assert_issue(&issues, "failover.single_global_registry", "the sites name two registries");
    let issues = invalid(|v| {
        v.as_object_mut().unwrap().insert("failover".into(), json!({ "single_global_registy": true }));
    });
    assert!(issues.iter().any(|i| i.contains("single_global_registy")), "{issues:?}");
}

#[test]
fn empty_strings_and_lists_are_refused() {
    let issues = invalid(|v| set(v, "/name", json!("  ")));
    assert_issue(&issues, "name", "expected a non-empty string");
    let issues = invalid(|v| set(v, "/sites/dr/environments", json!([])));
    assert_issue(&issues, "sites.dr.environments", "expected at least one environment");
}

#[test]
fn parameter_names_must_be_variable_names() {
    let issues = invalid(|v| {
        v["sites"]["dr"].as_object_mut().unwrap().insert("parameters".into(), json!({ "1BAD": "x" }));
    });
    assert_issue(&issues, "sites.dr.parameters.1BAD", "expected an environment variable name");
}

#[test]
fn every_cross_field_problem_is_reported_at_once() {
    let issues = invalid(|v| {
        set(v, "/sites/dr/cluster", json!("c1"));
        set(v, "/dns/0/ttl", json!(86400));
        set(v, "/objectives/rpo", json!("0s"));
    });
    assert!(issues.len() >= 3, "{issues:#?}");
}

#[test]
fn warnings_for_allowed_but_dubious_choices() {
    let mut v = base();
    set(&mut v, "/resilience", json!("cross-cloud"));
    set(&mut v, "/sites/dr/cloud", json!("gcp"));
    set(&mut v, "/replication", json!({ "mode": "logical" }));
    set(
        &mut v,
        "/dns/0",
        json!({ "name": "a.example.com", "ttl": 60, "strategy": "weighted", "primary_target": "x", "dr_target": "y", "health_check": false }),
    );
    let plan = DrPlan::from_value(v).unwrap();
    let paths: Vec<_> = plan.warnings().iter().map(|w| w.path.as_str()).collect();
    assert!(paths.contains(&"replication.mode"), "{paths:?}");
    assert!(paths.contains(&"dns[0].health_check"), "{paths:?}");
}

#[test]
fn syntax_errors_say_the_format_and_position() {
    let err = DrPlan::parse("name = ", PlanFormat::Toml).unwrap_err().to_string();
    assert!(err.starts_with("plan is not valid TOML"), "{err}");
    assert!(err.contains("line 1"), "{err}");
    let err = DrPlan::parse("{", PlanFormat::Json).unwrap_err().to_string();
    assert!(err.contains("JSON") && err.contains("line 1"), "{err}");
}

#[tokio::test]
async fn unreadable_files_and_unknown_extensions_are_clear() {
    let err = DrPlan::load("/nonexistent/plan.toml").await.unwrap_err().to_string();
    assert!(err.contains("cannot read plan file /nonexistent/plan.toml"), "{err}");
    let err = DrPlan::load("plan.ini").await.unwrap_err().to_string();
    assert!(err.contains("expected an extension .toml, .yaml, .yml or .json"), "{err}");
}

#[test]
fn reversed_plan_swaps_the_sites() {
    let plan = DrPlan::from_value(base()).unwrap();
    let back = plan.reversed();
    assert_eq!(back.primary().cluster, plan.dr().cluster);
    assert_eq!(back.dr().cluster, plan.primary().cluster);
    assert_eq!(back.dns()[0].primary_target, plan.dns()[0].dr_target);
    assert_eq!(back.registry_mapping().from, plan.registry_mapping().to);
}

#[test]
fn a_type_error_does_not_hide_the_other_problems() {
    // The README's sample: a port of the wrong type and a TTL above the RTO, together.
    let issues = invalid(|v| {
        set(v, "/sites/dr/database/port", json!("abc"));
        set(v, "/dns/0/ttl", json!(3600));
    });
    assert_issue(&issues, "sites.dr.database.port", r#"expected an integer 1-65535, got "abc""#);
    assert_issue(&issues, "dns[0].ttl", "expected a TTL at most the RTO (15m), got 1h");
    assert_eq!(issues.len(), 2, "{issues:#?}");
}

#[test]
fn every_kind_of_problem_is_reported_in_one_pass_without_echoing_secrets() {
    let issues = invalid(|v| {
        set(v, "/tier", json!("platinum"));
        set(v, "/sites/primary/database/password", json!("hunter2-inline"));
        set(v, "/sites/dr/database/port", json!(0));
        set(v, "/dns/0/strategy", json!("teleport"));
        v["dns"][0].as_object_mut().unwrap().insert("health_check".into(), json!("yes"));
        v["sites"]["dr"]["registry"].as_object_mut().unwrap().insert("hots".into(), json!("typo"));
        v["sites"]["dr"]["database"].as_object_mut().unwrap().remove("user");
        set(v, "/sites/dr/cluster", json!("c1"));
    });
    assert_issue(&issues, "tier", "unknown variant `platinum`");
    assert_issue(&issues, "sites.primary.database.password", "expected a secret reference");
    assert_issue(&issues, "sites.dr.database.port", "expected an integer 1-65535, got 0");
    assert_issue(&issues, "dns[0].strategy", "unknown variant `teleport`");
    assert_issue(&issues, "dns[0].health_check", "invalid type");
    assert_issue(&issues, "sites.dr.registry.hots", "unknown field `hots`");
    assert_issue(&issues, "sites.dr.database", "missing field `user`");
    // The cross-field rules still run on what is left.
    assert_issue(&issues, "sites.dr.cluster", "expected a cluster different from sites.primary.cluster");
    assert!(!issues.iter().any(|i| i.contains("hunter2")), "{issues:#?}");
    // Placeholders for reported values do not produce problems of their own.
    assert_eq!(issues.len(), 8, "{issues:#?}");
}

fn live(v: &mut Value) {
    let o = v.as_object_mut().unwrap();
    o.insert(
        "qovery".into(),
        json!({ "api_url": "http://127.0.0.1:8080", "organization": "org-1", "token": "env:QOVERY_API_TOKEN" }),
    );
    o.insert("state".into(), json!({ "url": "etcd://127.0.0.1:2379,127.0.0.1:2381/qdr" }));
    v["dns"][0].as_object_mut().unwrap().insert(
        "rfc2136".into(),
        json!({ "server": "127.0.0.1:5300", "zone": "example.com.", "nameservers": ["127.0.0.1:5300", "127.0.0.1:5301"],
                "tsig_key_name": "qdr", "tsig_secret": "file:/run/secrets/tsig" }),
    );
    v["dns"].as_array_mut().unwrap().push(json!({
        "name": "api.example.com", "ttl": 60, "strategy": "record-swap", "primary_target": "1.1.1.1", "dr_target": "2.2.2.2",
        "cloudflare": { "zone_id": "z1", "token": "env:CF_TOKEN", "api_base": "http://127.0.0.1:9000/client/v4" }
    }));
    let dr = v["sites"]["dr"].as_object_mut().unwrap();
    dr["registry"]["url"] = json!("http://127.0.0.1:5001");
    dr["registry"]["auth"] = json!({ "kind": "basic", "username": "dr", "password": "env:DR_REGISTRY_PASSWORD" });
    dr["database"]["tls_ca_file"] = json!("/etc/ssl/db-ca.pem");
    dr["database"]["subscription"] = json!("qdr_sub");
    v["sites"]["primary"]["registry"]["credentials"] = json!("env:PRIMARY_REGISTRY_CREDENTIALS");
}

#[test]
fn a_plan_describes_real_infrastructure_with_references_only() {
    use qovery_dr_core::plan::{DnsProviderPlan, RegistryAuthPlan, StateBackend};
    let mut v = base();
    live(&mut v);
    let plan = DrPlan::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    let q = plan.qovery().unwrap();
    assert_eq!((q.api_url.as_deref(), q.organization.as_str()), (Some("http://127.0.0.1:8080"), "org-1"));
    assert_eq!(q.token, SecretRef::Env("QOVERY_API_TOKEN".into()));
    assert_eq!(
        plan.state().cloned(),
        Some(StateBackend::Etcd {
            endpoints: vec!["http://127.0.0.1:2379".into(), "http://127.0.0.1:2381".into()],
            prefix: "qdr".into(),
            user: None,
            password: None
        })
    );
    match plan.dns()[0].provider.as_ref().unwrap() {
        DnsProviderPlan::Rfc2136 { server, zone, nameservers, tsig } => {
            assert_eq!((server.as_str(), zone.as_str(), nameservers.len()), ("127.0.0.1:5300", "example.com.", 2));
            let tsig = tsig.as_ref().unwrap();
            assert_eq!((tsig.name.as_str(), tsig.algorithm.as_str()), ("qdr", "hmac-sha256"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.dns()[1].provider.as_ref().map(|p| p.kind()), Some("cloudflare"));
    assert_eq!(plan.dr().registry.url.as_deref(), Some("http://127.0.0.1:5001"));
    assert_eq!(plan.dr().registry.auth.kind(), "basic");
    assert_eq!(
        plan.primary().registry.auth,
        RegistryAuthPlan::BasicPair { credentials: SecretRef::Env("PRIMARY_REGISTRY_CREDENTIALS".into()) }
    );
    assert_eq!(plan.dr().database.subscription.as_deref(), Some("qdr_sub"));
    assert_eq!(plan.replication().heartbeat_schema, "qovery_dr");
    // Failback swaps the sites' connection details with the sites.
    assert_eq!(plan.reversed().primary().registry.auth.kind(), "basic");
}

#[test]
fn plans_of_the_first_version_still_load() {
    let plan = DrPlan::from_value(base()).unwrap();
    assert!(plan.qovery().is_none() && plan.state().is_none() && plan.dns()[0].provider.is_none());
}

#[test]
fn connection_details_are_validated_with_their_paths_and_secrets_stay_hidden() {
    let issues = invalid(|v| {
        live(v);
        set(v, "/qovery/api_url", json!("ftp://x"));
        set(v, "/state/url", json!("postgres://admin:hunter2pw@db.example.com/qdr"));
        set(v, "/dns/0/rfc2136/server", json!("ns1.example.com"));
        v["dns"][0]["rfc2136"]["tsig_algorithm"] = json!("hmac-md5");
        v["dns"][1]["route53"] = json!({ "hosted_zone_id": "Z1" });
        v["sites"]["dr"]["registry"]["auth"] = json!({ "kind": "bearer" });
        v["sites"]["primary"]["registry"]["auth"] = json!({ "kind": "anonymous" });
    });
    assert_issue(&issues, "qovery.api_url", "expected an http:// or https:// URL");
    assert_issue(&issues, "state.url", "expected no password in the URL");
    assert_issue(&issues, "dns[0].rfc2136.server", "expected an IP address and port");
    assert_issue(&issues, "dns[0].rfc2136.tsig_algorithm", "expected hmac-sha256");
    assert_issue(&issues, "dns[1]", "expected one provider block");
    assert_issue(&issues, "sites.dr.registry.auth.token", "expected a token for kind bearer");
    assert_issue(&issues, "sites.primary.registry.credentials", "expected credentials or auth, not both");
    assert!(!issues.iter().any(|i| i.contains("hunter2pw")), "{issues:#?}");

    let issues = invalid(|v| {
        v["dns"][0]["strategy"] = json!("failover-routing");
        v["dns"][0]["route53"] = json!({});
    });
    assert_issue(&issues, "dns[0].route53.hosted_zone_id", "expected the hosted zone id");
    let issues = invalid(|v| {
        v["dns"][0]["strategy"] = json!("failover-routing");
        v["dns"][0]["zone"] = json!("Z1");
        v["dns"][0]["route53"] = json!({});
    });
    assert_issue(&issues, "dns[0].route53.primary_health_check", "failover routing moves traffic by inverting it");
    let issues = invalid(|v| {
        v.as_object_mut().unwrap().insert("state".into(), json!({ "url": "s3://bucket/x" }));
    });
    assert_issue(&issues, "state.url", "got scheme \"s3\"");
}

#[tokio::test]
async fn the_example_plans_describe_real_infrastructure() {
    use qovery_dr_core::plan::{DnsProviderPlan, RegistryAuthPlan, StateBackend};
    let aws = DrPlan::load(example("aws-cross-region.toml")).await.unwrap();
    assert!(aws.qovery().is_some() && matches!(aws.state(), Some(StateBackend::File { .. })));
    assert!(aws.dns().iter().all(|r| matches!(r.provider, Some(DnsProviderPlan::Route53 { .. }))));
    assert_eq!(aws.dr().database.subscription.as_deref(), Some("qovery_dr_sub"));
    assert_eq!(aws.dr().registry.auth, RegistryAuthPlan::Ecr { region: None, endpoint_url: None });
    let scw = DrPlan::load(example("scaleway-to-aws.yaml")).await.unwrap();
    assert!(matches!(scw.state(), Some(StateBackend::Etcd { .. })));
    assert!(matches!(scw.dns()[0].provider, Some(DnsProviderPlan::Cloudflare { .. })));
    let own = DrPlan::load(example("self-hosted-dns.toml")).await.unwrap();
    match &own.dns()[0].provider {
        Some(DnsProviderPlan::Rfc2136 { nameservers, tsig, .. }) => {
            assert_eq!(nameservers.len(), 2);
            assert!(tsig.is_some());
        }
        other => panic!("{other:?}"),
    }
    // Self-hosted DNS has no health checks: the plan says so and is warned once.
    let paths: Vec<&str> = own.warnings().iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, vec!["dns[0].health_check"], "{:?}", own.warnings());
}

#[test]
fn the_readme_plan_for_real_infrastructure_loads() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme.find("## Running against your infrastructure").expect("the README section")..];
    let start = section.find("```toml\n").expect("a TOML block") + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let plan = DrPlan::parse(block, PlanFormat::Toml).unwrap_or_else(|e| panic!("the README's plan: {e}"));
    assert_eq!(
        plan.dns().iter().filter_map(|r| r.provider.as_ref().map(|p| p.kind())).collect::<Vec<_>>(),
        ["route53", "cloudflare"]
    );
    assert!(plan.qovery().is_some() && plan.state().is_some());
}

#[test]
fn the_first_versions_credentials_table_is_flagged_with_where_each_entry_goes() {
    let mut v = base();
    v.as_object_mut().unwrap().insert("credentials".into(), json!({ "qovery_token": "env:QOVERY_API_TOKEN" }));
    let plan = DrPlan::from_value(v).unwrap();
    let w = plan.warnings().iter().find(|w| w.path == "credentials.qovery_token").expect("a warning");
    assert!(w.message.contains("qovery.token"), "{w}");
}

#[test]
fn the_fence_defaults_to_logins_and_the_weaker_one_must_be_named() {
    use qovery_dr_core::provider::FenceKind;
    assert_eq!(DrPlan::from_value(base()).unwrap().replication().fence, FenceKind::Logins);
    let mut v = base();
    v["replication"]["fence"] = json!("read-only");
    assert_eq!(DrPlan::from_value(v).unwrap().replication().fence, FenceKind::ReadOnly);
    let issues = invalid(|v| v["replication"]["fence"] = json!("soft"));
    assert_issue(&issues, "replication.fence", "`logins`");
}

fn two_environments_each(v: &mut Value) {
    set(v, "/sites/primary/environments", json!(["pa", "pb"]));
    set(v, "/sites/dr/environments", json!(["dx", "dy"]));
}

#[test]
fn several_environments_need_a_stated_pairing() {
    let issues = invalid(two_environments_each);
    assert_issue(&issues, "environment_pairs", "list positions are not a pairing");
    // Uneven lists cannot pair either.
    let issues = invalid(|v| set(v, "/sites/dr/environments", json!(["e2", "e3"])));
    assert_issue(&issues, "environment_pairs", "1 primary and 2 DR environments");
}

#[test]
fn the_stated_pairing_is_by_id_and_covers_every_environment() {
    let mut v = base();
    two_environments_each(&mut v);
    v["environment_pairs"] = json!([{ "primary": "pa", "dr": "dy" }, { "primary": "pb", "dr": "dx" }]);
    let plan = DrPlan::parse(&v.to_string(), PlanFormat::Json).unwrap();
    assert_eq!(plan.primary_counterpart(&"dy".into()).map(|e| e.as_str()), Some("pa"), "by id, not position");
    assert_eq!(plan.primary_counterpart(&"dx".into()).map(|e| e.as_str()), Some("pb"));
    assert_eq!(plan.reversed().primary_counterpart(&"pa".into()).map(|e| e.as_str()), Some("dy"), "failback");

    let issues = invalid(|v| {
        two_environments_each(v);
        v["environment_pairs"] = json!([{ "primary": "pa", "dr": "dy" }, { "primary": "pa", "dr": "dz" }]);
    });
    assert_issue(&issues, "environment_pairs[1].primary", "already in another pair");
    assert_issue(&issues, "environment_pairs[1].dr", "expected one of sites.dr.environments");
    assert_issue(&issues, "sites.primary.environments[1]", "a failover would leave it behind");
    assert_issue(&issues, "sites.dr.environments[0]", "nothing says which primary environment it replaces");
}

#[test]
fn one_environment_each_pairs_without_a_statement() {
    let plan = DrPlan::parse(&base().to_string(), PlanFormat::Json).unwrap();
    assert_eq!(plan.environment_pairs().len(), 1);
    assert_eq!(plan.primary_counterpart(&"e2".into()).map(|e| e.as_str()), Some("e1"));
}

#[test]
fn a_dns_only_failover_needs_a_dr_site_that_already_serves() {
    let issues = invalid(|v| {
        set(v, "/tier", json!("pilot-light"));
        v.as_object_mut().unwrap().insert("failover".into(), json!({ "dns_only": true }));
    });
    assert_issue(&issues, "failover.dns_only", "a pilot-light site is not deployed");
    let mut v = base();
    v.as_object_mut().unwrap().insert("failover".into(), json!({ "dns_only": true }));
    let plan = DrPlan::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.failover().dns_only);
    assert!(plan.warnings().iter().any(|w| w.path == "failover.dns_only" && w.message.contains("production scale")));
    let mut v = base();
    set(&mut v, "/tier", json!("active-active"));
    set(&mut v, "/objectives/rto", json!("1m"));
    v.as_object_mut().unwrap().insert("failover".into(), json!({ "dns_only": true }));
    let plan = DrPlan::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert!(!plan.warnings().iter().any(|w| w.path == "failover.dns_only"), "{:?}", plan.warnings());
}

#[test]
fn scales_name_their_field_when_they_cannot_be() {
    let issues = invalid(|v| {
        v["sites"]["dr"]["scale"] = json!({ "min_instances": 5, "max_instances": 2 });
    });
    assert_issue(&issues, "sites.dr.scale", "expected min_instances (5) at most max_instances (2)");
    let issues = invalid(|v| {
        v["sites"]["dr"]["scale"] = json!({ "services": { "api": { "min_instances": 0, "max_instances": 0 } } });
    });
    assert_issue(&issues, "sites.dr.scale.services.api", "at least one instance on the DR site");
    let issues = invalid(|v| {
        v["sites"]["dr"]["scale"] = json!({ "min_instances": 2 });
    });
    assert_issue(&issues, "sites.dr.scale", "expected both min_instances and max_instances");
    let mut v = base();
    v["sites"]["dr"]["scale"] = json!({ "min_instances": 2, "max_instances": 6, "services": { "api": { "min_instances": 3, "max_instances": 9, "memory_mib": 1024 } } });
    let plan = DrPlan::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.dr().scale.for_service("api").map(|s| (s.max_instances, s.memory_mib)), Some((9, Some(1024))));
    assert_eq!(plan.dr().scale.for_service("web").map(|s| s.max_instances), Some(6));
}

#[test]
fn dump_location_and_restore_checks_are_read_and_checked() {
    let mut v = base();
    set(
        &mut v,
        "/replication",
        json!({
            "mode": "dump", "dump_interval": "1m",
            "dump_location": "s3://dr-dumps/shop", "dump_store_endpoint": "https://s3.fr-par.scw.cloud",
            "dump_store_region": "fr-par",
            "dump_store_access_key_id": "env:SCW_ACCESS_KEY", "dump_store_secret_access_key": "env:SCW_SECRET_KEY",
            "restore_check_interval": "1h", "restore_check_database": "shop_check"
        }),
    );
    let plan = DrPlan::from_value(v).unwrap();
    let r = plan.replication();
    let store = r.dump_store.as_ref().unwrap();
    assert_eq!(store.url, "s3://dr-dumps/shop");
    assert_eq!(store.endpoint.as_deref(), Some("https://s3.fr-par.scw.cloud"));
    assert_eq!(store.region.as_deref(), Some("fr-par"));
    assert_eq!(store.secret_access_key, Some(SecretRef::Env("SCW_SECRET_KEY".into())));
    assert_eq!(r.restore_check_interval, Some(Duration::from_secs(3600)));
    assert_eq!(r.restore_check_database.as_deref(), Some("shop_check"));

    let dump = |extra: Value| {
        move |v: &mut Value| {
            let mut r = json!({ "mode": "dump", "dump_interval": "1m" });
            for (k, x) in extra.as_object().unwrap() {
                r[k] = x.clone();
            }
            set(v, "/replication", r);
        }
    };
    let issues = invalid(dump(json!({ "dump_location": "gs://bucket/x" })));
    assert_issue(&issues, "replication.dump_location", "expected an s3:// or file:// URL, got scheme \"gs\"");
    let issues = invalid(dump(json!({ "dump_location": "not a url" })));
    assert_issue(&issues, "replication.dump_location", "expected a URL such as");
    let issues = invalid(dump(json!({ "dump_location": "file:///d", "dump_store_region": "x" })));
    assert_issue(&issues, "replication.dump_store_region", "expected nothing here for a file:// location");
    let issues = invalid(dump(json!({ "dump_store_endpoint": "https://s3.example" })));
    assert_issue(&issues, "replication.dump_store_endpoint", "expected replication.dump_location as well");
    let issues = invalid(dump(json!({ "dump_location": "s3://b/p", "dump_store_endpoint": "s3.example.com" })));
    assert_issue(&issues, "replication.dump_store_endpoint", "expected an http(s) URL");
    let issues = invalid(dump(json!({ "dump_location": "s3://b/p", "dump_store_access_key_id": "env:K" })));
    assert_issue(&issues, "replication.dump_store_secret_access_key", "expected both");
    let issues = invalid(dump(json!({ "restore_check_interval": "30s" })));
    assert_issue(&issues, "replication.restore_check_interval", "expected at least the dump interval (1m), got 30s");
    // Streaming modes have no dumps to keep or check.
    let issues = invalid(|v| {
        set(
            v,
            "/replication",
            json!({ "mode": "physical", "dump_location": "s3://b/p", "restore_check_interval": "1h" }),
        )
    });
    assert_issue(&issues, "replication.dump_location", "expected nothing here for mode physical");
    assert_issue(&issues, "replication.restore_check_interval", "expected nothing here for mode physical");
}

fn rds(v: &mut Value, primary: Value, dr: Value) {
    v["sites"]["primary"]["database"]["rds"] = primary;
    v["sites"]["dr"]["database"]["rds"] = dr;
}

#[test]
fn rds_databases_load_as_a_read_replica_or_an_aurora_pair() {
    let mut v = base();
    rds(
        &mut v,
        json!({ "region": "eu-west-3", "instance": "shop", "parameter_group": "shop-pg15" }),
        json!({ "region": "eu-central-1", "instance": "shop-dr" }),
    );
    set(&mut v, "/replication", json!({ "mode": "physical", "fence": "read-only" }));
    let plan = DrPlan::from_value(v).unwrap();
    let p = plan.primary().database.rds.clone().unwrap();
    assert_eq!((p.region.as_str(), p.instance.as_str(), p.cluster), ("eu-west-3", "shop", None));
    assert_eq!(p.parameter_group.as_deref(), Some("shop-pg15"));
    assert_eq!(plan.dr().database.rds.as_ref().unwrap().instance, "shop-dr");

    // Aurora: both in one cluster, in one region, the cross-AZ level.
    let mut v = base();
    set(&mut v, "/resilience", json!("cross-az"));
    set(&mut v, "/sites/dr/region", json!("eu-west-3"));
    rds(
        &mut v,
        json!({ "region": "eu-west-3", "instance": "shop-1", "cluster": "shop" }),
        json!({ "region": "eu-west-3", "instance": "shop-2", "cluster": "shop" }),
    );
    let plan = DrPlan::from_value(v).unwrap();
    assert_eq!(plan.dr().database.rds.as_ref().unwrap().cluster.as_deref(), Some("shop"));
}

#[test]
fn an_rds_pair_states_what_the_rds_api_needs() {
    let replica = |p: Value, d: Value| move |v: &mut Value| rds(v, p, d);
    // Physical replication with RDS on one side only: SQL cannot promote an RDS replica.
    let issues =
        invalid(|v| v["sites"]["primary"]["database"]["rds"] = json!({ "region": "eu-west-3", "instance": "shop" }));
    assert_issue(&issues, "sites.dr.database.rds", "expected rds = { region, instance } here too");
    // Identifiers as the API takes them.
    let issues = invalid(replica(
        json!({ "region": "eu-west-3", "instance": "shop_db" }),
        json!({ "region": "eu-central-1", "instance": "2shop" }),
    ));
    assert_issue(&issues, "sites.primary.database.rds.instance", "letters, digits and hyphens only");
    assert_issue(&issues, "sites.dr.database.rds.instance", "starting with a letter");
    // Aurora: one cluster, one region, and not a cross-region plan.
    let issues = invalid(replica(
        json!({ "region": "eu-west-3", "instance": "a", "cluster": "shop" }),
        json!({ "region": "eu-west-3", "instance": "b", "cluster": "other" }),
    ));
    assert_issue(&issues, "sites.dr.database.rds.cluster", "expected the primary's cluster \"shop\"");
    let issues = invalid(replica(
        json!({ "region": "eu-west-3", "instance": "a", "cluster": "shop" }),
        json!({ "region": "eu-central-1", "instance": "b" }),
    ));
    assert_issue(&issues, "sites.dr.database.rds.cluster", "expected a cluster on both databases");
    let issues = invalid(replica(
        json!({ "region": "eu-west-3", "instance": "a", "cluster": "shop" }),
        json!({ "region": "eu-central-1", "instance": "b", "cluster": "shop" }),
    ));
    assert_issue(&issues, "sites.dr.database.rds.region", "cluster shop lives in one region");
    assert_issue(&issues, "resilience", "expected cross-az");
    let issues = invalid(replica(
        json!({ "region": "eu-west-3", "instance": "a", "cluster": "shop" }),
        json!({ "region": "eu-west-3", "instance": "a", "cluster": "shop" }),
    ));
    assert_issue(&issues, "sites.dr.database.rds.instance", "expected another instance");
    // The read-only fence is a parameter group of the primary's own.
    let read_only = |p: Value, d: Value| {
        move |v: &mut Value| {
            rds(v, p, d);
            set(v, "/replication", json!({ "mode": "physical", "fence": "read-only" }));
        }
    };
    let issues = invalid(read_only(
        json!({ "region": "eu-west-3", "instance": "a" }),
        json!({ "region": "eu-central-1", "instance": "b" }),
    ));
    assert_issue(&issues, "sites.primary.database.rds.parameter_group", "or fence = \"logins\"");
    let issues = invalid(|v| {
        read_only(
            json!({ "region": "eu-west-3", "instance": "a", "cluster": "c", "parameter_group": "g" }),
            json!({ "region": "eu-west-3", "instance": "b", "cluster": "c", "parameter_group": "g" }),
        )(v);
        set(v, "/resilience", json!("cross-az"));
    });
    assert_issue(&issues, "sites.dr.database.rds.parameter_group", "read-only too");
    // Other modes replicate over SQL: the block is not used, and the plan says so.
    let mut v = base();
    set(&mut v, "/replication", json!({ "mode": "logical" }));
    v["sites"]["primary"]["database"]["rds"] = json!({ "region": "eu-west-3", "instance": "shop" });
    let plan = DrPlan::from_value(v).unwrap();
    assert!(
        plan.warnings().iter().any(|w| w.path == "sites.primary.database.rds" && w.message.contains("not used")),
        "{:?}",
        plan.warnings()
    );
    // An unknown key in the block is named.
    let issues = invalid(replica(
        json!({ "region": "eu-west-3", "instance": "a", "engine": "postgres" }),
        json!({ "region": "eu-central-1", "instance": "b" }),
    ));
    assert!(issues.iter().any(|i| i.contains("engine")), "{issues:?}");
}

#[test]
fn the_readme_aurora_databases_load_in_a_cross_az_plan() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme.find("**In the plan**").expect("the README's RDS plan paragraph")..];
    let start = section.find("```toml\n").expect("a TOML block") + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let fragment: toml::Value = toml::from_str(block).unwrap_or_else(|e| panic!("the README's fragment: {e}"));
    let fragment = serde_json::to_value(fragment).unwrap();
    let mut v = base();
    set(&mut v, "/resilience", json!("cross-az"));
    set(&mut v, "/sites/dr/region", json!("eu-west-3"));
    for site in ["primary", "dr"] {
        v["sites"][site]["database"] = fragment["sites"][site]["database"].clone();
    }
    let plan = DrPlan::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.dr().database.rds.as_ref().and_then(|r| r.cluster.as_deref()), Some("shop"));
}

#[test]
fn every_toml_block_of_the_readme_is_toml() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut blocks = 0;
    for (i, part) in readme.split("```toml\n").enumerate().skip(1) {
        let block = &part[..part.find("```").expect("a closed block")];
        toml::from_str::<toml::Value>(block).unwrap_or_else(|e| panic!("README TOML block {i}: {e}\n{block}"));
        blocks += 1;
    }
    assert!(blocks >= 3, "the plan, the Terraform sample and the Aurora sample at least: {blocks}");
}
