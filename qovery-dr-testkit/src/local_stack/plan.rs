//! The plan file describing a running stack.

use super::{API, API_DR, API_PRIMARY, APP, APP_DR, APP_PRIMARY, ApiProvider, CF_ZONE, LocalStack, ORG, Replication};

/// The plan (TOML): every address from the running servers, every secret a `file:` reference.
pub(super) fn render(stack: &LocalStack) -> String {
    let d = stack.dir.display();
    let (mode, publication, subscription) = match stack.options.replication {
        // The original primary's server: a failback can re-protect it with pg_rewind.
        Replication::Physical => ("physical", stack.primary.server_plan_line().unwrap_or_default(), String::new()),
        Replication::Logical => {
            ("logical", "publication = \"qdr_pub\"\n".to_owned(), "subscription = \"qdr_sub\"\n".to_owned())
        }
    };
    let api_provider = match &stack.api {
        ApiProvider::Cloudflare(fake, _) => format!(
            "[dns.cloudflare]\nzone_id = \"{CF_ZONE}\"\ntoken = \"file:{d}/cf-token\"\napi_base = \"{}\"\n",
            fake.api_base()
        ),
        ApiProvider::Route53(moto, zone) => format!(
            "[dns.route53]\nhosted_zone_id = \"{zone}\"\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n",
            moto.url()
        ),
    };
    let knot = &stack.knot;
    format!(
        r#"# The local stack (qovery_dr_testkit::local_stack): every peer on 127.0.0.1.
name = "shop-local"
tier = "warm-standby"
resilience = "cross-region"

[objectives]
rto = "15m"
rpo = "1m"

[replication]
mode = "{mode}"
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
{publication}
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
{subscription}
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
server = "{knot_primary}"
zone = "{zone}."
nameservers = ["{knot_primary}", "{knot_secondary}"]
tsig_key_name = "{key}"
tsig_secret = "file:{d}/tsig"

[[dns]]
name = "{API}"
ttl = 60
strategy = "record-swap"
primary_target = "{API_PRIMARY}"
dr_target = "{API_DR}"
health_check = false

{api_provider}"#,
        qovery = stack.qovery.uri(),
        c1 = stack.clusters.0,
        c2 = stack.clusters.1,
        e1 = stack.environments.0,
        e2 = stack.environments.1,
        pg1 = stack.primary.port,
        pg2 = stack.standby.port,
        ra = stack.registry_a.host(),
        rb = stack.registry_b.host(),
        knot_primary = knot.primary,
        knot_secondary = knot.secondary,
        zone = knot.zone,
        key = knot.key_name,
    )
}
