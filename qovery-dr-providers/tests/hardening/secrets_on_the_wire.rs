//! The secrets audit, on the wire: every provider sends its secret to a real peer that
//! checks it (a registry with HTTP basic auth, a PostgreSQL asking SCRAM passwords, etcd
//! with authentication on, Knot verifying TSIG, Route53 on moto), right and wrong, and the
//! secret appears in no log, error or `Debug` output, neither as it is nor base64-, URL-
//! or hex-encoded (a hand-built `Authorization: Basic …` header leaks in base64).
//!
//! The secret holds `/`, `+` and `:` so that its URL-encoded form differs from it.

use std::process::Command;
use std::time::Duration;

use data_encoding::{BASE64, BASE64URL, HEXLOWER, HEXUPPER};
use qovery_dr_core::engine::{FailoverLock, LockHolder};
use qovery_dr_core::provider::{DnsSwitcher, RegistrySync, ReplicationManager};
use qovery_dr_core::{DnsRecordId, ImageRef, SecretString, Timestamp};
use qovery_dr_providers::etcd::{EtcdConfig, EtcdFailoverLock};
use qovery_dr_providers::postgres::{PgFailoverLock, PostgresReplicationManager};
use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
use qovery_dr_providers::rfc2136::{Rfc2136Config, Rfc2136DnsSwitcher, TsigAlgorithm, TsigKey};
use qovery_dr_providers::route53::{Route53Config, Route53DnsSwitcher};
use qovery_dr_testkit::etcd_server::EtcdServer;

use crate::cluster::PgServer;
use crate::knot::{KnotServer, ZONE};
use crate::server::RegistryServer;

const SENTINEL: &str = "QDR/SENT+INEL:7f3a9c";

fn secret(what: &str) -> String {
    format!("{SENTINEL}-{what}")
}

/// The sentinel in every encoding a leak could take. For base64, the sentinel's encoding
/// depends on where it starts in the encoded text: each of the three alignments gives a
/// run of characters that only its bytes produce.
fn forms() -> Vec<(String, String)> {
    let mut out = vec![("as is".to_owned(), SENTINEL.to_owned())];
    let url: String = SENTINEL
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    out.push(("URL-encoded".into(), url.clone()));
    out.push(("URL-encoded, lower case".into(), url.replace("%2F", "%2f").replace("%2B", "%2b").replace("%3A", "%3a")));
    out.push(("hex".into(), HEXLOWER.encode(SENTINEL.as_bytes())));
    out.push(("HEX".into(), HEXUPPER.encode(SENTINEL.as_bytes())));
    for pad in 0..3 {
        let mut bytes = vec![b'x'; pad];
        bytes.extend_from_slice(SENTINEL.as_bytes());
        for (name, enc) in [("base64", BASE64.encode(&bytes)), ("base64url", BASE64URL.encode(&bytes))] {
            // Skip the characters that mix the padding bytes in, and the last, partial group.
            let start = (pad * 4).div_ceil(3);
            let end = (bytes.len() / 3) * 4;
            if end > start + 8 {
                out.push((format!("{name} (offset {pad})"), enc[start..end].to_owned()));
            }
        }
    }
    out
}

fn assert_clean(place: &str, text: &str) {
    for (encoding, form) in forms() {
        if let Some(i) = text.find(&form) {
            let from = text[..i].char_indices().rev().nth(80).map_or(0, |(j, _)| j);
            let to = text[i..].char_indices().nth(form.len() + 80).map_or(text.len(), |(j, _)| i + j);
            panic!("the secret leaked, {encoding}, into {place}: …{}…", &text[from..to]);
        }
    }
}

fn holder(run: &str) -> LockHolder {
    LockHolder { run_id: run.into(), owner: "audit".into(), acquired_at: Timestamp::from_unix_millis(0) }
}

#[test]
fn the_forms_catch_a_basic_header_and_a_url() {
    // The check itself: a hand-built Basic header and a URL with the secret are caught.
    let header = format!("Authorization: Basic {}", BASE64.encode(format!("AWS:{}", secret("r")).as_bytes()));
    assert!(std::panic::catch_unwind(|| assert_clean("a header", &header)).is_err(), "{header}");
    let url = "https://h/?p=QDR%2FSENT%2BINEL%3A7f3a9c-x";
    assert!(std::panic::catch_unwind(|| assert_clean("a URL", url)).is_err());
    assert_clean("an unrelated text", "nothing to see: QDR SENT INEL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_sent_to_real_peers_appear_in_no_log_error_or_debug_output() {
    crate::logs::logs();
    let mut seen = Vec::<(String, String)>::new();

    // 1. An OCI registry with HTTP basic authentication (htpasswd with the secret's bcrypt).
    const BCRYPT: &str = "$2b$10$vp210bLcsk7Jf9HOwS4pHub43jiUEeGjO8gDFa2tPODOtEmB.Jj.q"; // secret("registry")
    let reg = RegistryServer::start_with_basic_auth("dr", BCRYPT);
    let mapping = qovery_dr_core::provider::RegistryMapping::new(
        qovery_dr_core::provider::RegistryLocation { host: reg.host(), prefix: None },
        qovery_dr_core::provider::RegistryLocation { host: reg.host(), prefix: Some("dr".into()) },
    );
    let auth = |password: String| RegistryAuth::Basic { username: "dr".into(), password: SecretString::new(password) };
    let good =
        OciRegistrySync::new(reg.url(), auth(secret("registry")), reg.url(), auth(secret("registry")), mapping.clone());
    let image: ImageRef = format!("{}/shop/api:v1", reg.host()).parse().unwrap();
    let e = good.parity(&image).await.unwrap_err();
    assert_eq!(e.kind(), qovery_dr_core::ErrorKind::NotFound, "authenticated, then not found: {e}");
    seen.push(("registry: authenticated".into(), format!("{e} {e:?} {good:?}")));
    let bad = OciRegistrySync::new(reg.url(), auth(secret("wrong")), reg.url(), auth(secret("wrong")), mapping);
    let e = bad.parity(&image).await.unwrap_err();
    assert_eq!(e.kind(), qovery_dr_core::ErrorKind::Unauthenticated, "{e}");
    seen.push(("registry: refused".into(), format!("{e} {e:?}")));
    // A bearer token goes out the same way (as the Authorization header).
    let bearer = RegistryAuth::Bearer { token: SecretString::new(secret("bearer")) };
    seen.push(("registry bearer".into(), format!("{bearer:?}")));

    // 2. PostgreSQL asking for a SCRAM password over TCP.
    let pg = PgServer::primary();
    pg.sql(&format!("CREATE ROLE dr_orchestrator LOGIN SUPERUSER PASSWORD '{}'", secret("pg")));
    let hba = pg.data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all dr_orchestrator 127.0.0.1/32 scram-sha-256\n{rules}")).unwrap();
    pg.sql("SELECT pg_reload_conf()");
    let endpoint = |password: String| {
        qovery_dr_providers::postgres::PgEndpoint::new("127.0.0.1", pg.port, "dr_orchestrator", "postgres")
            .with_password(SecretString::new(password))
    };
    let manager = PostgresReplicationManager::physical("db".into(), endpoint(secret("pg")), endpoint(secret("pg")));
    let w = manager.primary_writability(&"db".into()).await.unwrap();
    seen.push(("postgres: authenticated".into(), format!("{w:?} {manager:?}")));
    let lock = PgFailoverLock::connect(endpoint(secret("pg"))).await.unwrap();
    lock.acquire("audit", &holder("run-1")).await.unwrap();
    seen.push(("postgres lock".into(), format!("{lock:?}")));
    let e = PgFailoverLock::connect(endpoint(secret("wrong-pg"))).await.unwrap_err();
    assert!(e.to_string().contains("password authentication failed"), "{e}");
    seen.push(("postgres: refused".into(), format!("{e} {e:?}")));

    // 3. etcd with authentication on.
    let etcd = EtcdServer::single().unwrap();
    let ctl = |args: &[&str]| {
        let out = Command::new("etcdctl")
            .arg(format!("--endpoints={}", etcd.endpoints().join(",")))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ctl(&["user", "add", "root", &format!("--new-user-password={}", secret("etcd"))]);
    ctl(&["auth", "enable"]);
    let config = |password: String| {
        EtcdConfig::new(etcd.endpoints())
            .with_credentials("root", SecretString::new(password))
            .with_timeout(Duration::from_secs(2))
    };
    let etcd_lock = EtcdFailoverLock::connect(config(secret("etcd"))).await.unwrap();
    etcd_lock.acquire("audit", &holder("run-1")).await.unwrap();
    seen.push(("etcd: authenticated".into(), format!("{etcd_lock:?}")));
    let e = match EtcdFailoverLock::connect(config(secret("wrong-etcd"))).await {
        Err(e) => e.to_string(),
        Ok(l) => l.acquire("audit-2", &holder("run-2")).await.unwrap_err().to_string(),
    };
    seen.push(("etcd: refused".into(), e));

    // 4. Knot verifying TSIG (the key's secret is base64 of the sentinel's bytes).
    let tsig_secret = BASE64.encode(secret("tsig").as_bytes());
    let knot = KnotServer::start_with_key(&["app 60 A 203.0.113.10"], &tsig_secret);
    let key = |s: &str| TsigKey::new("qdr-key", TsigAlgorithm::HmacSha256, SecretString::new(s));
    let rfc = Rfc2136DnsSwitcher::new(
        Rfc2136Config::new(knot.addr, ZONE).with_tsig(key(&tsig_secret)).with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let request = qovery_dr_core::provider::SwitchRequest::new(
        DnsRecordId::new(format!("app.{ZONE}")),
        qovery_dr_core::provider::SwitchStrategy::RecordSwap,
        "203.0.113.10".into(),
        "198.51.100.20".into(),
    );
    let change = rfc.switch(&request).await.unwrap();
    seen.push(("rfc2136: signed update".into(), format!("{change:?} {rfc:?}")));
    let wrong = BASE64.encode(secret("wrong-tsig").as_bytes());
    let refused = Rfc2136DnsSwitcher::new(
        Rfc2136Config::new(knot.addr, ZONE).with_tsig(key(&wrong)).with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    // Back the other way (the record already serves the first target: a no-op sends nothing).
    let back = qovery_dr_core::provider::SwitchRequest::new(
        request.record.clone(),
        request.strategy,
        request.new_target.clone(),
        request.expected_current.clone(),
    );
    let e = refused.switch(&back).await.unwrap_err();
    seen.push(("rfc2136: refused".into(), format!("{e} {e:?}")));
    seen.push(("knot log".into(), knot.log()));

    // 5. Route53 on moto, requests signed with the secret access key.
    let m = crate::moto::moto();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_route53::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_route53::config::Credentials::new(
            "AKIDAUDIT",
            secret("aws"),
            None,
            None,
            "audit",
        ))
        .endpoint_url(&m.url)
        .load()
        .await;
    let route53 = Route53DnsSwitcher::from_sdk_config(&sdk, Route53Config::new("Z0NOSUCHZONE"));
    let e = route53.current(&DnsRecordId::new("app.example.com")).await.unwrap_err();
    seen.push(("route53 on moto".into(), format!("{e} {e:?} {route53:?}")));

    // Nothing of it anywhere, in any encoding.
    seen.push(("TRACE logs".into(), crate::logs::text()));
    for (place, text) in &seen {
        assert_clean(place, text);
    }
    let logs = &seen.last().unwrap().1;
    for peer in ["reqwest", "tokio_postgres", "hickory", "aws_smithy", "h2"] {
        assert!(logs.contains(peer), "the TRACE logs hold {peer}'s events: the audit saw the traffic");
    }
}
