//! Validation of what a plan says about reaching real infrastructure: the Qovery
//! API, the state backend, each DNS record's provider, each registry's auth.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::live::{DnsProviderPlan, QoveryPlan, RegistryAuthPlan, StateBackend, TsigPlan};
use super::raw::{RawAuthKind, RawDnsRecord, RawQovery, RawRegistry, RawState, RawStrategy};
use super::validate::Check;
use crate::model::DnsTarget;

/// An `http(s)://` URL, or an issue at `path`.
fn http_url(text: &str, path: &str, check: &mut Check) -> Option<String> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Some(text.trim_end_matches('/').to_owned())
        }
        Ok(u) => {
            check.error(path, format!("expected an http:// or https:// URL with a host, got scheme {:?}", u.scheme()));
            None
        }
        Err(e) => {
            check.error(path, format!("expected an http:// or https:// URL, got {text:?} ({e})"));
            None
        }
    }
}

pub(super) fn qovery(raw: Option<RawQovery>, check: &mut Check) -> Option<QoveryPlan> {
    let raw = raw?;
    let api_url = raw.api_url.and_then(|u| http_url(&u.0, "qovery.api_url", check));
    Some(QoveryPlan { api_url, organization: raw.organization.0, token: raw.token.0 })
}

pub(super) fn state(raw: Option<RawState>, check: &mut Check) -> Option<StateBackend> {
    const PATH: &str = "state.url";
    let raw = raw?;
    let text = raw.url.0.as_str();
    let password = raw.password.map(|p| p.0);
    let Some((scheme, rest)) = text.split_once("://") else {
        check.error(
            PATH,
            "expected a URL file:///DIR, etcd://HOST:PORT[,HOST:PORT…]/PREFIX or postgres://USER@HOST[:PORT]/DB",
        );
        return None;
    };
    match scheme {
        "file" => {
            if password.is_some() {
                check.error("state.password", "expected no password for a file:// state");
            }
            if !rest.starts_with('/') || rest.len() < 2 {
                check.error(PATH, format!("expected file:///ABSOLUTE/DIR, got {text:?}"));
                return None;
            }
            Some(StateBackend::File { dir: PathBuf::from(rest) })
        }
        "etcd" => {
            let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let (user, hosts) = match authority.rsplit_once('@') {
                Some((userinfo, hosts)) => (Some(userinfo), hosts),
                None => (None, authority),
            };
            if user.is_some_and(|u| u.contains(':')) {
                check.error(PATH, "expected no password in the URL (it is not shown): put it in state.password as env:NAME or file:PATH");
                return None;
            }
            let endpoints: Vec<String> =
                hosts.split(',').filter(|h| !h.is_empty()).map(|h| format!("http://{h}")).collect();
            if endpoints.is_empty()
                || hosts.split(',').any(|h| h.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_err()))
            {
                check.error(PATH, format!("expected etcd://HOST:PORT[,HOST:PORT…]/PREFIX, got {text:?}"));
                return None;
            }
            if user.is_some() != password.is_some() {
                check.error("state.password", "expected a user in the URL and state.password together, or neither");
            }
            let prefix =
                if prefix.is_empty() { "qovery-dr".to_owned() } else { prefix.trim_end_matches('/').to_owned() };
            Some(StateBackend::Etcd { endpoints, prefix, user: user.map(str::to_owned), password })
        }
        "postgres" | "postgresql" => {
            let parsed = match url::Url::parse(text) {
                Ok(u) => u,
                Err(e) => {
                    check.error(PATH, format!("expected postgres://USER@HOST[:PORT]/DB: {e}"));
                    return None;
                }
            };
            if parsed.password().is_some() {
                check.error(PATH, "expected no password in the URL (it is not shown): put it in state.password as env:NAME or file:PATH");
                return None;
            }
            let dbname = parsed.path().trim_start_matches('/').to_owned();
            let (Some(host), false, false) = (parsed.host_str(), parsed.username().is_empty(), dbname.is_empty())
            else {
                check.error(
                    PATH,
                    format!("expected postgres://USER@HOST[:PORT]/DB with a user, a host and a database, got {text:?}"),
                );
                return None;
            };
            Some(StateBackend::Postgres {
                host: host.to_owned(),
                port: parsed.port().unwrap_or(5432),
                dbname,
                user: parsed.username().to_owned(),
                password,
            })
        }
        other => {
            check.error(PATH, format!("expected a file://, etcd:// or postgres:// URL, got scheme {other:?}"));
            None
        }
    }
}

fn socket(text: &str, path: &str, check: &mut Check) -> Option<String> {
    match text.parse::<SocketAddr>() {
        Ok(a) => Some(a.to_string()),
        Err(_) => {
            check.error(path, format!("expected an IP address and port like 192.0.2.53:53, got {text:?}"));
            None
        }
    }
}

/// The record's provider block, if any (a plan of the first version has none;
/// connecting it then says what to add).
pub(super) fn dns_provider(
    r: &RawDnsRecord,
    path: &str,
    strategy: Option<RawStrategy>,
    check: &mut Check,
) -> Option<DnsProviderPlan> {
    let blocks = [r.route53.is_some(), r.cloudflare.is_some(), r.rfc2136.is_some()].iter().filter(|b| **b).count();
    if blocks > 1 {
        check.error(path, "expected one provider block (route53, cloudflare or rfc2136), got several");
        return None;
    }
    let zone = r.zone.as_ref().map(|z| z.0.clone());
    if let Some(b) = &r.route53 {
        let p = format!("{path}.route53");
        let Some(hosted_zone_id) = b.hosted_zone_id.as_ref().map(|z| z.0.clone()).or(zone) else {
            check.error(
                format!("{p}.hosted_zone_id"),
                "expected the hosted zone id (or the record's zone), got nothing",
            );
            return None;
        };
        let endpoint_url = b.endpoint_url.as_ref().and_then(|u| http_url(&u.0, &format!("{p}.endpoint_url"), check));
        let mut health_checks = BTreeMap::new();
        if let Some(h) = &b.primary_health_check {
            health_checks.insert(DnsTarget::new(r.primary_target.0.clone()), h.0.clone());
        }
        if let Some(h) = &b.dr_health_check {
            health_checks.insert(DnsTarget::new(r.dr_target.0.clone()), h.0.clone());
        }
        match strategy {
            Some(RawStrategy::LoadBalancerPool) => check.error(
                format!("{path}.strategy"),
                "route53 has no load-balancer pools: use record-swap, failover-routing or weighted (or a cloudflare block)",
            ),
            Some(RawStrategy::FailoverRouting) if b.primary_health_check.is_none() => check.error(
                format!("{p}.primary_health_check"),
                "expected the primary record's health check id: failover routing moves traffic by inverting it",
            ),
            _ => {}
        }
        return Some(DnsProviderPlan::Route53 {
            hosted_zone_id,
            endpoint_url,
            region: b.region.as_ref().map(|x| x.0.clone()),
            health_checks,
            nameservers: sockets(&b.nameservers, &p, check),
        });
    }
    if let Some(b) = &r.cloudflare {
        let p = format!("{path}.cloudflare");
        let Some(zone_id) = b.zone_id.as_ref().map(|z| z.0.clone()).or(zone) else {
            check.error(format!("{p}.zone_id"), "expected the zone id (or the record's zone), got nothing");
            return None;
        };
        if matches!(strategy, Some(RawStrategy::LoadBalancerPool)) && b.account_id.is_none() {
            check.error(format!("{p}.account_id"), "expected the account id: load-balancer pools live in the account");
        }
        if matches!(strategy, Some(RawStrategy::FailoverRouting | RawStrategy::Weighted)) {
            check.error(
                format!("{path}.strategy"),
                "cloudflare switches records (record-swap) or load-balancer pools (load-balancer-pool)",
            );
        }
        let api_base = b.api_base.as_ref().and_then(|u| http_url(&u.0, &format!("{p}.api_base"), check));
        return Some(DnsProviderPlan::Cloudflare {
            zone_id,
            token: b.token.0.clone(),
            account_id: b.account_id.as_ref().map(|x| x.0.clone()),
            api_base,
            nameservers: sockets(&b.nameservers, &p, check),
        });
    }
    if let Some(b) = &r.rfc2136 {
        let p = format!("{path}.rfc2136");
        let server = socket(&b.server.0, &format!("{p}.server"), check);
        let nameservers = sockets(&b.nameservers, &p, check);
        let Some(zone) = b.zone.as_ref().map(|z| z.0.clone()).or(zone) else {
            check.error(format!("{p}.zone"), "expected the zone (e.g. \"example.com.\"), got nothing");
            return None;
        };
        if !matches!(strategy, Some(RawStrategy::RecordSwap) | None) {
            check.error(format!("{path}.strategy"), "rfc2136 swaps records: use record-swap");
        }
        let tsig = match (&b.tsig_key_name, &b.tsig_algorithm, &b.tsig_secret) {
            (None, None, None) => None,
            (Some(name), algorithm, Some(secret)) => {
                let algorithm = algorithm.as_ref().map_or("hmac-sha256".to_owned(), |a| a.0.to_ascii_lowercase());
                if !matches!(algorithm.as_str(), "hmac-sha256" | "hmac-sha384" | "hmac-sha512") {
                    check.error(
                        format!("{p}.tsig_algorithm"),
                        format!("expected hmac-sha256, hmac-sha384 or hmac-sha512, got {algorithm:?}"),
                    );
                }
                Some(TsigPlan { name: name.0.clone(), algorithm, secret: secret.0.clone() })
            }
            _ => {
                check.error(format!("{p}.tsig_key_name"), "expected tsig_key_name and tsig_secret together");
                None
            }
        };
        return Some(DnsProviderPlan::Rfc2136 { server: server?, zone, nameservers, tsig });
    }
    None
}

/// A block's `nameservers`, each an `ip:port` (errors at `<block>.nameservers[i]`).
fn sockets(listed: &[crate::plan::fields::NonEmpty], block: &str, check: &mut Check) -> Vec<String> {
    listed.iter().enumerate().filter_map(|(i, n)| socket(&n.0, &format!("{block}.nameservers[{i}]"), check)).collect()
}

/// The registry's authentication: `auth`, or the first version's `credentials`
/// (`user:password` in one secret).
pub(super) fn registry_auth(raw: &RawRegistry, path: &str, check: &mut Check) -> RegistryAuthPlan {
    let p = format!("{path}.auth");
    let auth = match (&raw.auth, &raw.credentials) {
        (Some(_), Some(_)) => {
            check.error(
                format!("{path}.credentials"),
                "expected credentials or auth, not both (auth replaces credentials)",
            );
            return RegistryAuthPlan::Anonymous;
        }
        (None, Some(c)) => return RegistryAuthPlan::BasicPair { credentials: c.0.clone() },
        (None, None) => return RegistryAuthPlan::Anonymous,
        (Some(a), None) => a,
    };
    let mut unexpected = |field: &str, present: bool| {
        if present {
            check.error(format!("{p}.{field}"), "not used by this auth kind; remove it");
        }
    };
    let Some(kind) = auth.kind.0 else { return RegistryAuthPlan::Anonymous };
    match kind {
        RawAuthKind::Anonymous => {
            unexpected("username", auth.username.is_some());
            unexpected("password", auth.password.is_some());
            unexpected("token", auth.token.is_some());
            RegistryAuthPlan::Anonymous
        }
        RawAuthKind::Basic => {
            unexpected("token", auth.token.is_some());
            match (&auth.username, &auth.password) {
                (Some(u), Some(pw)) => RegistryAuthPlan::Basic { username: u.0.clone(), password: pw.0.clone() },
                _ => {
                    check.error(p.clone(), "expected username and password for kind basic");
                    RegistryAuthPlan::Anonymous
                }
            }
        }
        RawAuthKind::Bearer => {
            unexpected("username", auth.username.is_some());
            unexpected("password", auth.password.is_some());
            match &auth.token {
                Some(t) => RegistryAuthPlan::Bearer { token: t.0.clone() },
                None => {
                    check.error(format!("{p}.token"), "expected a token for kind bearer, got nothing");
                    RegistryAuthPlan::Anonymous
                }
            }
        }
        RawAuthKind::Ecr => {
            unexpected("password", auth.password.is_some());
            unexpected("token", auth.token.is_some());
            let endpoint_url =
                auth.endpoint_url.as_ref().and_then(|u| http_url(&u.0, &format!("{p}.endpoint_url"), check));
            RegistryAuthPlan::Ecr { region: auth.region.as_ref().map(|r| r.0.clone()), endpoint_url }
        }
        RawAuthKind::DockerConfig => {
            unexpected("password", auth.password.is_some());
            unexpected("token", auth.token.is_some());
            RegistryAuthPlan::DockerConfig { path: auth.path.as_ref().map(|x| PathBuf::from(&x.0)) }
        }
    }
}
