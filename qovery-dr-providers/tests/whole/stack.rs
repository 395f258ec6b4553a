//! A small real stack for the connect tests: the Qovery fake over HTTP with two
//! sites, a PostgreSQL 15 primary and streaming standby, two docker-registry
//! servers (the DR one already holding the primary's image), a Knot server for
//! `qdr.test` and the Cloudflare fake for `example.com`, and the plan that
//! describes them, with every secret in a file of its own.

use std::path::PathBuf;

use qovery_dr_core::ImageRef;
use qovery_dr_core::provider::{RegistryLocation, RegistryMapping, RegistrySync};
use qovery_dr_providers::registry::{OciRegistrySync, RegistryAuth};
use qovery_dr_testkit::cloudflare_fake::CloudflareFake;
use qovery_dr_testkit::qovery_fake::QoveryFake;

use crate::dns::knot::{KEY_NAME, KEY_SECRET, KnotServer, ZONE};
use crate::pg::cluster::PgServer;
use crate::reg::server::{RegistryServer, layer, push_image};

pub const ORG: &str = "org-live";
pub const QOVERY_TOKEN: &str = "qovery-token-sentinel-7f3a";
pub const CF_ZONE: &str = "0123456789abcdef0123456789abcdef";
pub const CF_TOKEN: &str = "cloudflare-token-sentinel-9c1e";
pub const PG_PASSWORD: &str = "pg-password-sentinel-44d0";
pub const APP: &str = "app.qdr.test";
pub const API: &str = "api.example.com";
pub const APP_PRIMARY: &str = "203.0.113.10";
pub const APP_DR: &str = "198.51.100.20";
pub const API_PRIMARY: &str = "203.0.113.11";
pub const API_DR: &str = "198.51.100.21";

pub struct Stack {
    pub dir: PathBuf,
    pub qovery: QoveryFake,
    pub primary: PgServer,
    pub standby: PgServer,
    pub registry_a: RegistryServer,
    pub registry_b: RegistryServer,
    pub knot: KnotServer,
    pub cloudflare: CloudflareFake,
    pub clusters: (String, String),
    pub environments: (String, String),
    pub api_record: String,
}

/// The services of each environment in the stack's Qovery fake.
pub const SERVICES: [&str; 3] = ["api", "web", "worker"];

impl Stack {
    /// The stack with the DR registry already holding the primary's images.
    pub async fn start() -> Stack {
        Self::start_with(true).await
    }

    /// The stack; with `mirrored` false the DR registry starts empty (a failover copies the images).
    pub async fn start_with(mirrored: bool) -> Stack {
        let dir = std::env::temp_dir().join(format!(
            "qdr-live-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        for (name, value) in
            [("qovery-token", QOVERY_TOKEN), ("cf-token", CF_TOKEN), ("pg-password", PG_PASSWORD), ("tsig", KEY_SECRET)]
        {
            std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
        }

        let registry_a = RegistryServer::start();
        let registry_b = RegistryServer::start();
        for (i, name) in SERVICES.iter().enumerate() {
            let seed = 10 * i as u64;
            push_image(
                &registry_a.url(),
                &format!("shop/{name}"),
                "v1",
                &[layer(seed + 1, 64 << 10), layer(seed + 2, 32 << 10)],
            )
            .await;
        }
        let mirror = OciRegistrySync::new(
            registry_a.url(),
            RegistryAuth::Anonymous,
            registry_b.url(),
            RegistryAuth::Anonymous,
            RegistryMapping::new(
                RegistryLocation { host: registry_a.host(), prefix: None },
                RegistryLocation { host: registry_b.host(), prefix: Some("mirror".into()) },
            ),
        );
        if mirrored {
            // The DR registry holds the primary's images before the incident (as DR requires).
            for name in SERVICES {
                let image: ImageRef = format!("{}/shop/{name}:v1", registry_a.host()).parse().unwrap();
                mirror.copy(&image).await.unwrap();
            }
        }

        let qovery = QoveryFake::start(ORG).await;
        qovery.require_token(QOVERY_TOKEN);
        let c1 = qovery.add_cluster("paris");
        let c2 = qovery.add_cluster("frankfurt");
        let e1 = qovery.add_environment("project-1", "prod", &c1);
        let e2 = qovery.add_environment("project-1", "prod-dr", &c2);
        // Deploys take real seconds, and one runs per environment at a time (as on Qovery).
        qovery.set_durations(std::time::Duration::from_millis(300), std::time::Duration::from_millis(1500));
        for name in SERVICES {
            qovery.add_container(&e1, name, &format!("http://{}", registry_a.host()), &format!("shop/{name}"), "v1");
            // The DR environment runs the primary's images until a failover remaps them.
            qovery.add_container(&e2, name, &format!("http://{}", registry_a.host()), &format!("shop/{name}"), "v1");
        }

        let primary = PgServer::primary();
        let standby = PgServer::standby_of(&primary, "dr_slot");

        let knot = KnotServer::start(&[&format!("app 60 A {APP_PRIMARY}")]);
        let cloudflare = CloudflareFake::start(CF_ZONE, CF_TOKEN).await;
        let api_record = cloudflare.add_record(API, "A", API_PRIMARY, 60);

        Stack {
            dir,
            qovery,
            primary,
            standby,
            registry_a,
            registry_b,
            knot,
            cloudflare,
            clusters: (c1, c2),
            environments: (e1, e2),
            api_record,
        }
    }

    /// The plan describing this stack (TOML).
    pub fn plan_toml(&self) -> String {
        let d = self.dir.display();
        format!(
            r#"name = "shop-live"
tier = "warm-standby"
resilience = "cross-region"

[objectives]
rto = "15m"
rpo = "1m"

[replication]
mode = "physical"
heartbeat_interval = "1s"

[approval]
required = false

[qovery]
api_url = "{qovery}"
organization = "{ORG}"
token = "file:{d}/qovery-token"

[state]
url = "file://{d}/state"

[sites.primary]
name = "paris"
cloud = "aws"
region = "eu-west-3"
cluster = "{c1}"
project = "project-1"
environments = ["{e1}"]

[sites.primary.database]
id = "shop-db"
host = "127.0.0.1"
port = {pg1}
dbname = "postgres"
user = "postgres"
password = "file:{d}/pg-password"

[sites.primary.registry]
host = "{ra}"
url = "http://{ra}"

[sites.primary.parameters]
DATABASE_URL = "postgres://127.0.0.1:{pg1}/postgres"

[sites.dr]
name = "frankfurt"
cloud = "aws"
region = "eu-central-1"
cluster = "{c2}"
project = "project-1"
environments = ["{e2}"]

[sites.dr.database]
id = "shop-db"
host = "127.0.0.1"
port = {pg2}
dbname = "postgres"
user = "postgres"
password = "file:{d}/pg-password"

[sites.dr.registry]
host = "{rb}"
prefix = "mirror"
url = "http://{rb}"

[sites.dr.parameters]
DATABASE_URL = "postgres://127.0.0.1:{pg2}/postgres"

[[dns]]
name = "{APP}"
ttl = 60
strategy = "record-swap"
primary_target = "{APP_PRIMARY}"
dr_target = "{APP_DR}"
health_check = false

[dns.rfc2136]
server = "{knot}"
zone = "{ZONE}."
tsig_key_name = "{KEY_NAME}"
tsig_secret = "file:{d}/tsig"

[[dns]]
name = "{API}"
ttl = 60
strategy = "record-swap"
primary_target = "{API_PRIMARY}"
dr_target = "{API_DR}"
health_check = false

[dns.cloudflare]
zone_id = "{CF_ZONE}"
token = "file:{d}/cf-token"
api_base = "{cf}"
"#,
            qovery = self.qovery.uri(),
            c1 = self.clusters.0,
            c2 = self.clusters.1,
            e1 = self.environments.0,
            e2 = self.environments.1,
            pg1 = self.primary.port,
            pg2 = self.standby.port,
            ra = self.registry_a.host(),
            rb = self.registry_b.host(),
            knot = self.knot.addr,
            cf = self.cloudflare.api_base(),
        )
    }

    /// Writes the plan file and returns its path.
    pub fn write_plan(&self, text: &str) -> PathBuf {
        let path = self.dir.join("plan.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The content the Cloudflare fake holds for the `api.example.com` A record.
    pub fn cloudflare_content(&self, name: &str) -> Option<String> {
        assert_eq!(name, API, "the stack's Cloudflare zone holds one record");
        self.cloudflare.content(&self.api_record)
    }

    /// What `kdig` (Knot's client, independent of the SDK) gets from the Knot server for `name`.
    pub fn knot_answer(&self, name: &str) -> String {
        let out = std::process::Command::new("kdig")
            .arg(format!("@{}", self.knot.addr.ip()))
            .arg("-p")
            .arg(self.knot.addr.port().to_string())
            .args([name, "A", "+short"])
            .output()
            .expect("kdig (Debian's knot-dnsutils; scripts/test installs it)");
        assert!(out.status.success(), "kdig: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts capturing this test binary's logs (see `common/logs.rs`).
pub fn capture_logs() {
    crate::logs::logs();
}

/// Fails if a secret of the stack appears in the captured logs, in clear, base64 or hex.
pub fn assert_logs_clean() {
    let logs = crate::logs::text();
    assert!(logs.len() > 1000, "the logs were captured ({} bytes)", logs.len());
    for secret in [QOVERY_TOKEN, CF_TOKEN, PG_PASSWORD] {
        let forms = [
            secret.to_owned(),
            data_encoding::BASE64.encode(secret.as_bytes()),
            data_encoding::HEXLOWER.encode(secret.as_bytes()),
        ];
        for form in forms {
            assert!(!logs.contains(&form), "a secret leaked into the logs (as {form})");
        }
    }
}
