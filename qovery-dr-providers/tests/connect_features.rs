//! `connect` in a build without some providers: a plan that needs one gets an
//! error naming the plan field and the cargo feature, before anything is contacted.
//!
//! Compiled only without the `route53` feature: `scripts/test` runs it with
//! `--no-default-features --features qovery,postgres,registry` (the main run uses
//! every feature, where this file compiles to nothing).
#![cfg(all(feature = "qovery", feature = "postgres", feature = "registry", not(feature = "route53")))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use qovery_dr_core::plan::{DrPlan, PlanFormat};
use qovery_dr_providers::connect::{ConnectError, ConnectOptions, connect, inspect};

const PLAN: &str = r#"
name = "features"
tier = "warm-standby"
resilience = "cross-region"
objectives = { rto = "15m", rpo = "1m" }
replication = { mode = "physical" }
qovery = { organization = "org-1", token = "env:PATH" }
state = { url = "etcd://127.0.0.1:1/qdr" }
[sites.primary]
name = "paris"
cloud = "aws"
region = "eu-west-3"
cluster = "c1"
environments = ["e1"]
database = { id = "db", host = "127.0.0.1", port = 1, dbname = "shop", user = "u" }
registry = { host = "127.0.0.1:1", url = "http://127.0.0.1:1" }
[sites.dr]
name = "frankfurt"
cloud = "aws"
region = "eu-central-1"
cluster = "c2"
environments = ["e2"]
database = { id = "db", host = "127.0.0.2", port = 1, dbname = "shop", user = "u" }
registry = { host = "127.0.0.1:2", url = "http://127.0.0.1:2" }
[[dns]]
name = "shop.example.com"
ttl = 60
strategy = "record-swap"
primary_target = "203.0.113.10"
dr_target = "198.51.100.20"
route53 = { hosted_zone_id = "Z1" }
"#;

#[tokio::test]
async fn a_provider_left_out_of_the_build_is_named_with_its_feature() {
    let plan = DrPlan::parse(PLAN, PlanFormat::Toml).unwrap();
    let e = connect(&plan, ConnectOptions::new()).await.unwrap_err();
    match &e {
        ConnectError::FeatureMissing { path, feature, .. } => {
            assert_eq!((path.as_str(), *feature), ("dns[0].route53", "route53"));
        }
        other => panic!("expected FeatureMissing, got {other}"),
    }
    assert!(e.to_string().contains("enable the cargo feature `route53`"), "{e}");

    let report = inspect(&plan).await;
    assert!(!report.ready());
    let text = report.to_text();
    assert!(text.contains("NOT COMPILED: enable the cargo feature `route53`"), "{text}");
    // etcd is left out of this build too: the state backend is named as well.
    assert!(text.contains("NOT COMPILED: enable the cargo feature `etcd`"), "{text}");
}

#[tokio::test]
async fn each_provider_left_out_is_named_dns_and_state_alike() {
    let rfc = PLAN.replace(
        "route53 = { hosted_zone_id = \"Z1\" }",
        "rfc2136 = { server = \"127.0.0.1:53\", zone = \"example.com.\" }",
    );
    let e = connect(&DrPlan::parse(&rfc, PlanFormat::Toml).unwrap(), ConnectOptions::new()).await.unwrap_err();
    assert!(matches!(e, ConnectError::FeatureMissing { feature: "rfc2136", .. }), "{e}");
    assert_eq!(e.path(), "dns[0].rfc2136");

    // Without DNS records, the next need is the state backend (etcd, not in this build).
    let no_dns = &PLAN[..PLAN.find("[[dns]]").unwrap()];
    let e = connect(&DrPlan::parse(no_dns, PlanFormat::Toml).unwrap(), ConnectOptions::new()).await.unwrap_err();
    assert!(matches!(e, ConnectError::FeatureMissing { feature: "etcd", .. }), "{e}");
    assert_eq!(e.path(), "state.url");
}

#[tokio::test]
async fn dumps_in_object_storage_without_the_dump_store_feature_are_named() {
    let plan = PLAN.replace(
        r#"replication = { mode = "physical" }"#,
        r#"replication = { mode = "dump", dump_interval = "1m", dump_location = "s3://dumps/shop" }"#,
    );
    let plan = DrPlan::parse(&plan, PlanFormat::Toml).unwrap();
    let e = match qovery_dr_providers::connect::dump_backups(&plan, &ConnectOptions::new()).await {
        Err(e) => e,
        Ok(_) => panic!("dumps were set up without the dump-store feature"),
    };
    match &e {
        ConnectError::FeatureMissing { path, feature, .. } => {
            assert_eq!((path.as_str(), *feature), ("replication.dump_location", "dump-store"));
        }
        other => panic!("expected FeatureMissing, got {other}"),
    }
    let text = inspect(&plan).await.to_text();
    assert!(text.contains("replication.dump_location") && text.contains("dump-store"), "{text}");
}

#[tokio::test]
async fn rds_databases_without_the_rds_feature_are_named() {
    let plan = PLAN
        .replace(
            r#"user = "u" }
registry = { host = "127.0.0.1:1""#,
            r#"user = "u", rds = { region = "eu-west-3", instance = "shop" } }
registry = { host = "127.0.0.1:1""#,
        )
        .replace(
            r#"user = "u" }
registry = { host = "127.0.0.1:2""#,
            r#"user = "u", rds = { region = "eu-central-1", instance = "shop-dr" } }
registry = { host = "127.0.0.1:2""#,
        );
    let plan = DrPlan::parse(&plan, PlanFormat::Toml).unwrap();
    assert!(plan.dr().database.rds.is_some(), "the plan states RDS on both sides");
    let e = connect(&plan, ConnectOptions::new()).await.unwrap_err();
    match &e {
        ConnectError::FeatureMissing { path, feature, .. } => {
            assert_eq!((path.as_str(), *feature), ("sites.primary.database.rds", "rds"));
        }
        other => panic!("expected FeatureMissing, got {other}"),
    }
    let text = inspect(&plan).await.to_text();
    assert!(
        text.contains("RDS instance shop (eu-west-3) -> read replica shop-dr (eu-central-1)")
            && text.contains("NOT COMPILED: enable the cargo feature `rds`"),
        "{text}"
    );
}
