//! moto's server (Route53 and S3 emulation) on 127.0.0.1, without signature checks,
//! and a hosted zone in it, driven through the Route53 REST API directly.
//!
//! The server is `$QDR_MOTO_SERVER`, else `.tools/moto/bin/moto_server` in the
//! workspace (`scripts/tools.sh` installs `moto[server]` there).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::LocalStackError;
use super::daemon::{Daemon, listening, scratch, tool};

const NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// A running moto server.
#[derive(Debug)]
pub struct MotoServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    root: PathBuf,
    daemon: Daemon,
}

impl MotoServer {
    /// Starts moto (any AWS credentials are accepted).
    pub fn start() -> Result<MotoServer, LocalStackError> {
        let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/moto/bin/moto_server");
        let binary = tool("QDR_MOTO_SERVER", default, "moto[server] (pip; scripts/tools.sh installs it)")?;
        let root = scratch("moto")?;
        let port = crate::pg_server::free_port().map_err(|e| LocalStackError::failed("finding a free port", &e))?;
        let mut command = Command::new(binary);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut daemon = Daemon::spawn("moto_server", command, root.join("moto.log"))?;
        daemon.wait_until(Duration::from_secs(60), |_| listening(port))?;
        Ok(MotoServer { port, root, daemon })
    }

    /// `http://127.0.0.1:<port>`, the endpoint URL to give the AWS SDK.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<String>) -> Result<String, LocalStackError> {
        self.call_service("route53", method, path, body).await
    }

    async fn call_service(
        &self,
        service: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> Result<String, LocalStackError> {
        let what = format!("moto {method} {path}");
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url()))
            // moto reads the service, account and region from the credential scope; any
            // signature is accepted.
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=AKIDLOCALSTACK/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
            );
        if let Some(body) = body {
            request = request.header("content-type", "application/xml").body(body);
        }
        let r = request.send().await.map_err(|e| LocalStackError::failed(&what, &e.to_string()))?;
        let status = r.status();
        let text = r.text().await.map_err(|e| LocalStackError::failed(&what, &e.to_string()))?;
        if !status.is_success() {
            return Err(LocalStackError::failed(&what, &format!("{status}: {text}")));
        }
        Ok(text)
    }

    /// Creates the S3 bucket `name` (in `us-east-1`), for object-store tests.
    pub async fn create_bucket(&self, name: &str) -> Result<(), LocalStackError> {
        self.call_service("s3", reqwest::Method::PUT, &format!("/{name}"), None).await.map(|_| ())
    }

    /// The keys in the S3 bucket `name` under `prefix`.
    pub async fn bucket_keys(&self, name: &str, prefix: &str) -> Result<Vec<String>, LocalStackError> {
        let text = self
            .call_service("s3", reqwest::Method::GET, &format!("/{name}?list-type=2&prefix={prefix}"), None)
            .await?;
        Ok(text.split("<Key>").skip(1).filter_map(|v| v.split("</Key>").next()).map(str::to_owned).collect())
    }

    /// Creates a hosted zone for `zone` (e.g. `example.com`); returns its id (without `/hostedzone/`).
    pub async fn create_zone(&self, zone: &str) -> Result<String, LocalStackError> {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><CreateHostedZoneRequest xmlns="{NS}"><Name>{zone}.</Name><CallerReference>qdr-{}-{zone}</CallerReference></CreateHostedZoneRequest>"#,
            std::process::id()
        );
        let text = self.call(reqwest::Method::POST, "/2013-04-01/hostedzone", Some(body)).await?;
        element(&text, "Id")
            .map(|id| id.trim_start_matches("/hostedzone/").to_owned())
            .ok_or_else(|| LocalStackError::failed("creating a hosted zone in moto", &format!("no <Id> in {text}")))
    }

    /// Sets the A record `name` to `value` (UPSERT).
    pub async fn upsert_a(&self, zone_id: &str, name: &str, value: &str, ttl: u32) -> Result<(), LocalStackError> {
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="{NS}"><ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>{name}.</Name><Type>A</Type><TTL>{ttl}</TTL><ResourceRecords><ResourceRecord><Value>{value}</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#
        );
        self.call(reqwest::Method::POST, &format!("/2013-04-01/hostedzone/{zone_id}/rrset/"), Some(body)).await?;
        Ok(())
    }

    /// The values of the A record `name`, as moto holds them.
    pub async fn a_values(&self, zone_id: &str, name: &str) -> Result<Vec<String>, LocalStackError> {
        let path = format!("/2013-04-01/hostedzone/{zone_id}/rrset?name={name}.&type=A&maxitems=1");
        let text = self.call(reqwest::Method::GET, &path, None).await?;
        let Some(set) = element(&text, "ResourceRecordSet") else { return Ok(Vec::new()) };
        if element(set, "Name").map(|n| n.trim_end_matches('.')) != Some(name) {
            return Ok(Vec::new());
        }
        Ok(set.split("<Value>").skip(1).filter_map(|v| v.split("</Value>").next()).map(str::to_owned).collect())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.daemon.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = xml.get(start..)?.find(&format!("</{tag}>"))?;
    xml.get(start..start + len)
}

#[cfg(test)]
mod tests {
    use super::element;

    #[test]
    fn element_reads_the_first_matching_tag() {
        let xml = "<A><Id>/hostedzone/Z1</Id><Id>other</Id></A>";
        assert_eq!(element(xml, "Id"), Some("/hostedzone/Z1"));
        assert_eq!(element(xml, "Missing"), None);
        assert_eq!(element("<Id>unterminated", "Id"), None);
    }
}
