//! Contract tier: the official Cloudflare schema (read in place from
//! ../shared/specs/cloudflare, overridable by QDR_CLOUDFLARE_SPEC) served by
//! Prism; every request the Cloudflare switcher sends must be accepted.
//!
//! Known defects of this schema copy (see its SOURCE.txt) are handled here, in
//! the test only, on a derived copy written to a temporary directory:
//! - DNS operations declare email+key auth only; the real API takes a Bearer
//!   token, which is what the switcher sends: their security becomes `api_token`.
//! - DNS request bodies list read-only fields as required: `required` lists are
//!   reduced to the writable fields.
//! - Prism serves paths without the `/client/v4` prefix: the API base is Prism's root.

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
    for path in ["/zones/{zone_id}/dns_records", "/zones/{zone_id}/dns_records/{dns_record_id}"] {
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

#[tokio::test]
async fn every_request_the_switcher_sends_is_accepted_by_the_schema() {
    let prism = Prism::start(&derived_spec());
    let zone = "023e105f4ecef8ad9ca31a8372d0c353";
    let s =
        CloudflareDnsSwitcher::new(CloudflareConfig::new(zone, SecretString::new("prism-token")).api_base(prism.url()))
            .unwrap();
    // Prism answers the schema's example records: switch the example's record.
    let listed: Value = reqwest::Client::new()
        .get(format!("{}/zones/{zone}/dns_records", prism.url()))
        .bearer_auth("prism-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let request = SwitchRequest {
        record: record.clone(),
        strategy: SwitchStrategy::RecordSwap,
        expected_current: now.clone(),
        new_target: DnsTarget::new("203.0.113.77"),
    };
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
