//! Two Knot DNS servers authoritative for one zone, as a zone is served in
//! production: a primary that takes TSIG-signed RFC 2136 updates and notifies a
//! secondary, which transfers the zone (IXFR/AXFR) and answers on its own. Both
//! are listed in the zone's NS records.
//!
//! The binaries are `$QDR_KNOTD` (else `/usr/sbin/knotd`, Debian's `knot`) and
//! `$QDR_KDIG` (else `/usr/bin/kdig`, Debian's `knot-dnsutils`), the client used
//! to ask each server what it serves, independently of the SDK.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::LocalStackError;
use super::daemon::{Daemon, free_port_tcp_udp, scratch, tool, write};

/// The TSIG algorithm of the stack's key.
pub const TSIG_ALGORITHM: &str = "hmac-sha256";
/// The TSIG key's name.
pub const TSIG_KEY_NAME: &str = "qdr-key";
/// The TSIG key (base64 of 32 bytes); only for these throwaway servers.
pub const TSIG_SECRET: &str = "cWRyLXRlc3Qta2V5LXRoaXJ0eS10d28tYnl0ZXMhISE=";

/// The primary and the secondary of a zone.
#[derive(Debug)]
pub struct KnotPair {
    /// The zone, without the final dot (e.g. `qdr.test`).
    pub zone: String,
    /// The TSIG key's name.
    pub key_name: String,
    /// The TSIG key (base64); only for these throwaway servers.
    pub key_secret: String,
    /// The primary: takes updates.
    pub primary: SocketAddr,
    /// The secondary: transfers the zone from the primary.
    pub secondary: SocketAddr,
    root: PathBuf,
    daemons: Vec<Daemon>,
}

impl KnotPair {
    /// Starts both servers for `zone`, serving `records` (zone-file lines relative to the
    /// zone, e.g. `app 60 A 203.0.113.10`); returns once the secondary has the zone.
    pub fn start(zone: &str, records: &[String]) -> Result<KnotPair, LocalStackError> {
        let knotd = tool("QDR_KNOTD", "/usr/sbin/knotd", "knot")?;
        tool("QDR_KDIG", "/usr/bin/kdig", "knot-dnsutils")?;
        let root = scratch("knot")?;
        let (p1, p2) = (free_port_tcp_udp()?, free_port_tcp_udp()?);
        let (key_name, key_secret) = (TSIG_KEY_NAME.to_owned(), TSIG_SECRET.to_owned());
        let zone_file = format!(
            "$ORIGIN {zone}.\n$TTL 60\n@ SOA ns1.{zone}. hostmaster.{zone}. 1 3600 900 604800 60\n@ NS ns1.{zone}.\n@ NS ns2.{zone}.\nns1 A 127.0.0.1\nns2 A 127.0.0.1\n{}\n",
            records.join("\n")
        );
        let mut pair = KnotPair {
            zone: zone.to_owned(),
            key_name,
            key_secret,
            primary: SocketAddr::from(([127, 0, 0, 1], p1)),
            secondary: SocketAddr::from(([127, 0, 0, 1], p2)),
            root: root.clone(),
            daemons: Vec::new(),
        };
        for (role, port) in [("primary", p1), ("secondary", p2)] {
            let dir = root.join(role);
            std::fs::create_dir_all(dir.join("db")).map_err(|e| LocalStackError::io(&dir, e))?;
            if role == "primary" {
                write(&dir.join(format!("{zone}.zone")), &zone_file)?;
            }
            write(&dir.join("knot.conf"), &pair.config(role, &dir, port, if role == "primary" { p2 } else { p1 }))?;
            let mut command = Command::new(&knotd);
            command.arg("--config").arg(dir.join("knot.conf"));
            let mut daemon = Daemon::spawn(&format!("knotd ({role})"), command, dir.join("knot.log"))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            daemon.wait_until(Duration::from_secs(20), |_| soa_serial(addr, zone).is_ok_and(|s| s.is_some()))?;
            pair.daemons.push(daemon);
        }
        Ok(pair)
    }

    /// Knot's configuration (block-style YAML: Knot rejects flow-style maps).
    fn config(&self, role: &str, dir: &Path, port: u16, peer: u16) -> String {
        let (zone, key, secret) = (&self.zone, &self.key_name, &self.key_secret);
        let zone_block = if role == "primary" {
            format!(
                "zone:\n  - domain: {zone}\n    file: {zone}.zone\n    notify: peer\n    acl: [qdr-update, qdr-transfer]\n"
            )
        } else {
            format!("zone:\n  - domain: {zone}\n    file: {zone}.zone\n    master: peer\n    acl: qdr-notify\n")
        };
        format!(
            r#"server:
    rundir: "{dir}"
    listen: 127.0.0.1@{port}

database:
    storage: "{dir}/db"

log:
  - target: stderr
    any: info

key:
  - id: {key}
    algorithm: {TSIG_ALGORITHM}
    secret: {secret}

remote:
  - id: peer
    address: 127.0.0.1@{peer}

acl:
  - id: qdr-update
    key: {key}
    action: update
  - id: qdr-transfer
    address: 127.0.0.1
    action: transfer
  - id: qdr-notify
    address: 127.0.0.1
    action: notify

template:
  - id: default
    storage: "{dir}"
    zonefile-sync: -1
    journal-content: changes

{zone_block}"#,
            dir = dir.display()
        )
    }

    /// Both servers, primary first.
    pub fn servers(&self) -> [SocketAddr; 2] {
        [self.primary, self.secondary]
    }

    /// The A records `server` answers for `name` (asked with `kdig`), joined by newlines.
    pub fn answer(&self, server: SocketAddr, name: &str) -> Result<String, LocalStackError> {
        kdig(server, &[name, "A", "+short"])
    }

    /// What `server` answers for the TXT record `name` (`kdig +short`: one quoted
    /// string per line, empty when there is none).
    pub fn txt(&self, server: SocketAddr, name: &str) -> Result<String, LocalStackError> {
        kdig(server, &[name, "TXT", "+short"])
    }

    /// The servers' directory (configuration, journals, logs).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for KnotPair {
    fn drop(&mut self) {
        self.daemons.clear();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The zone's SOA serial as `server` answers it (`None` while it does not serve the zone).
fn soa_serial(server: SocketAddr, zone: &str) -> Result<Option<u64>, LocalStackError> {
    let out = kdig(server, &[zone, "SOA", "+short", "+timeout=1", "+retry=0"])?;
    Ok(out.split_whitespace().nth(2).and_then(|s| s.parse().ok()))
}

fn kdig(server: SocketAddr, args: &[&str]) -> Result<String, LocalStackError> {
    let kdig = tool("QDR_KDIG", "/usr/bin/kdig", "knot-dnsutils")?;
    let out = Command::new(kdig)
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(args)
        .output()
        .map_err(|e| LocalStackError::failed("running kdig", &e.to_string()))?;
    if !out.status.success() {
        return Err(LocalStackError::failed(
            &format!("kdig @{server} {args:?}"),
            &String::from_utf8_lossy(&out.stderr),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
