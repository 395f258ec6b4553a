//! Contract tier: the official Cloudflare schema (read in place from
//! ../shared/specs/cloudflare, overridable by QDR_CLOUDFLARE_SPEC) served by
//! Prism; every request the Cloudflare switcher sends must be accepted.
//!
//! Known defects of this schema copy (see its SOURCE.txt) are handled here, in
//! the test only, on a derived copy written to a temporary directory:
//! - DNS operations declare email+key auth only, and load-balancer and pool
//!   operations require email, key *and* token at once; the real API takes a
//!   Bearer token alone, which is what the switcher sends: their security
//!   becomes `api_token`.
//! - DNS request bodies list read-only fields as required: `required` lists are
//!   reduced to the writable fields.
//! - Prism serves paths without the `/client/v4` prefix: the API base is Prism's root.
//! - The schema's own load-balancer example breaks its schema
//!   (`session_affinity_attributes.headers` is an object where an array is
//!   declared), so Prism flags its *responses*; the load-balancer test checks
//!   the requests (`Violation: request...`) and counts those response findings
//!   out, naming them. (Not in SOURCE.txt's list; found here.)

use std::path::PathBuf;

use qovery_dr_core::provider::{DnsSwitcher, SwitchRequest, SwitchStrategy};
use qovery_dr_core::{DnsRecordId, DnsTarget, ErrorKind, SecretString};
use qovery_dr_providers::cloudflare::{CloudflareConfig, CloudflareDnsSwitcher};
use serde_json::Value;

use crate::prism::Prism;

fn spec() -> PathBuf {
    let p = std::env::var_os("QDR_CLOUDFLARE_SPEC").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/specs/cloudflare/openapi.json"))
    });
    assert!(p.exists(), "the official Cloudflare schema is not at {} (set QDR_CLOUDFLARE_SPEC)", p.display());
    p
}

const READ_ONLY: [&str; 6] = ["id", "proxiable", "created_on", "modified_on", "zone_id", "zone_name"];

fn strip_read_only_required(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(req)) = map.get_mut("required") {
                req.retain(|f| !f.as_str().is_some_and(|f| READ_ONLY.contains(&f)));
            }
            map.values_mut().for_each(strip_read_only_required);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_read_only_required),
        _ => {}
    }
}

/// The derived copy with the documented defects worked around.
fn derived_spec() -> PathBuf {
    let mut d: Value = serde_json::from_slice(&std::fs::read(spec()).unwrap()).unwrap();
    for path in [
        "/zones/{zone_id}/dns_records",
        "/zones/{zone_id}/dns_records/{dns_record_id}",
        "/zones/{zone_id}/load_balancers",
        "/zones/{zone_id}/load_balancers/{load_balancer_id}",
        "/accounts/{account_id}/load_balancers/pools/{pool_id}",
        "/accounts/{account_id}/load_balancers/pools/{pool_id}/health",
    ] {
        for op in d["paths"][path].as_object_mut().unwrap().values_mut() {
            if op.is_object() {
                op["security"] = serde_json::json!([{"api_token": []}]);
            }
        }
    }
    for (name, schema) in d["components"]["schemas"].as_object_mut().unwrap().iter_mut() {
        if name.starts_with("dns-records_") {
            strip_read_only_required(schema);
        }
    }
    let out = std::env::temp_dir().join(format!("qdr-cloudflare-spec-{}.json", std::process::id()));
    std::fs::write(&out, serde_json::to_vec(&d).unwrap()).unwrap();
    out
}

/// What Prism answers to a GET of `path` (the schema's example), to pick real values from.
async fn example(prism: &Prism, path: &str) -> Value {
    let resp = reqwest::Client::new().get(format!("{}{path}", prism.url())).bearer_auth("prism-token").send().await;
    resp.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn every_request_the_switcher_sends_is_accepted_by_the_schema() {
    let prism = Prism::start(&derived_spec());
    let zone = "023e105f4ecef8ad9ca31a8372d0c353";
    let s = CloudflareDnsSwitcher::new(
        CloudflareConfig::new(zone, SecretString::new("prism-token")).with_api_base(prism.url()),
    )
    .unwrap();
    // Prism answers the schema's example records: switch the example's record.
    let listed = example(&prism, &format!("/zones/{zone}/dns_records")).await;
    let example = &listed["result"][0];
    assert!(
        matches!(example["type"].as_str(), Some("A" | "AAAA" | "CNAME")),
        "the example is an address record: {listed}"
    );
    let record = DnsRecordId::new(example["name"].as_str().unwrap());
    let now = match s.current(&record).await {
        Ok(state) => state.target,
        Err(e) => panic!("list dns_records: {e}\n{}", prism.log_text()),
    };
    let request =
        SwitchRequest::new(record.clone(), SwitchStrategy::RecordSwap, now.clone(), DnsTarget::new("203.0.113.77"));
    // The PATCH is validated and answered; the re-read then shows the static example
    // again, which the switcher rightly reports as not switched (a Conflict).
    let err = s.switch(&request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}\n{}", prism.log_text());
    let violations = prism.violations();
    assert!(violations.is_empty(), "Prism found requests that break the schema:\n{}", violations.join("\n"));
    let log = prism.log_text();
    for seen in ["[HTTP SERVER] get /zones/", "[HTTP SERVER] patch /zones/"] {
        assert!(log.contains(seen), "Prism saw no {seen} request:\n{log}");
    }
}

#[tokio::test]
async fn every_load_balancer_request_the_switcher_sends_is_accepted_by_the_schema() {
    use qovery_dr_core::provider::TargetHealth;
    let prism = Prism::start(&derived_spec());
    let zone = "023e105f4ecef8ad9ca31a8372d0c353";
    let account = "01a7362d577a6c3019a474fd6f485823";
    let config = CloudflareConfig::new(zone, SecretString::new("prism-token"))
        .with_api_base(prism.url())
        .with_load_balancers(account);
    let s = CloudflareDnsSwitcher::new(config).unwrap();
    // Prism answers the schema's example load balancer.
    let listed = example(&prism, &format!("/zones/{zone}/load_balancers")).await;
    let example = &listed["result"][0];
    let record = DnsRecordId::new(example["name"].as_str().unwrap());
    let pools: Vec<&str> = example["default_pools"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(pools.len() >= 2, "the example has several pools: {listed}");
    let now = match s.current(&record).await {
        Ok(state) => state.target,
        Err(e) => panic!("list load balancers / get pools: {e}\n{}", prism.log_text()),
    };
    let health = s.pool_health(pools[1]).await;
    assert!(matches!(health, Ok(TargetHealth::Healthy | TargetHealth::Unhealthy)), "{health:?}\n{}", prism.log_text());
    s.set_pool_enabled(pools[1], false).await.unwrap();
    let to = pools.iter().find(|p| **p != now.as_str()).unwrap();
    let request = SwitchRequest::new(record, SwitchStrategy::LoadBalancerPool, now, DnsTarget::new(*to));
    // The PATCHes are validated and answered; the re-read then shows the static example
    // again, which the switcher rightly reports as not switched (a Conflict).
    let err = s.switch(&request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}\n{}", prism.log_text());
    let (responses, requests): (Vec<String>, Vec<String>) =
        prism.violations().into_iter().partition(|v| v.contains("Violation: response.body.result"));
    assert!(requests.is_empty(), "Prism found requests that break the schema:\n{}", requests.join("\n"));
    assert!(
        responses.iter().all(|v| v.contains("session_affinity_attributes.headers")),
        "only the known defect of the schema's example: {responses:?}"
    );
    let log = prism.log_text();
    for seen in [
        "[HTTP SERVER] get /zones/023e105f4ecef8ad9ca31a8372d0c353/load_balancers",
        "[HTTP SERVER] patch /zones/023e105f4ecef8ad9ca31a8372d0c353/load_balancers/",
        "[HTTP SERVER] get /accounts/01a7362d577a6c3019a474fd6f485823/load_balancers/pools/",
        "[HTTP SERVER] patch /accounts/01a7362d577a6c3019a474fd6f485823/load_balancers/pools/",
        "/health",
    ] {
        assert!(log.contains(seen), "Prism saw no {seen} request:\n{log}");
    }
}
