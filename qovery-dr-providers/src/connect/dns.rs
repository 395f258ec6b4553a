//! One DNS switcher from a record's provider block.

use std::sync::Arc;

use qovery_dr_core::plan::DnsProviderPlan;
use qovery_dr_core::provider::DnsSwitcher;

use super::ConnectError;
use super::secrets::Secrets;

#[allow(dead_code)]
fn feature(path: &str, provider: &'static str, feature: &'static str) -> ConnectError {
    ConnectError::FeatureMissing { path: format!("{path}.{feature}"), provider, feature }
}

/// The switcher for `provider`, the block of the record at plan field `path`.
pub(super) async fn switcher(
    path: &str,
    provider: &DnsProviderPlan,
    options: &super::ConnectOptions,
    secrets: &mut Secrets,
) -> Result<Arc<dyn DnsSwitcher>, ConnectError> {
    let _ = (&secrets, options);
    match provider {
        #[cfg(feature = "route53")]
        DnsProviderPlan::Route53 { hosted_zone_id, endpoint_url, region, health_checks, .. } => {
            use crate::route53::{Route53Config, Route53DnsSwitcher};
            let mut config = Route53Config::new(hosted_zone_id);
            if let Some(url) = endpoint_url {
                config = config.with_endpoint_url(url);
            }
            for (target, id) in health_checks {
                config = config.with_health_check(target.clone(), id);
            }
            // Route53 is global; the SDK still wants a region. The plan's, else the environment's, else us-east-1.
            let region =
                region.clone().or_else(|| std::env::var("AWS_REGION").ok()).unwrap_or_else(|| "us-east-1".into());
            let sdk = super::build::aws_config(options, region).await;
            Ok(Arc::new(Route53DnsSwitcher::from_sdk_config(&sdk, config)))
        }
        #[cfg(feature = "cloudflare")]
        DnsProviderPlan::Cloudflare { zone_id, token, account_id, api_base, .. } => {
            use crate::cloudflare::{CloudflareConfig, CloudflareDnsSwitcher};
            let token = secrets.get(&format!("{path}.cloudflare.token"), token).await?;
            let mut config = CloudflareConfig::new(zone_id, token);
            if let Some(base) = api_base {
                config = config.with_api_base(base);
            }
            if let Some(account) = account_id {
                config = config.with_load_balancers(account);
            }
            let s = CloudflareDnsSwitcher::new(config).map_err(|source| ConnectError::Provider {
                path: format!("{path}.cloudflare"),
                source: Box::new(source),
            })?;
            Ok(Arc::new(s))
        }
        #[cfg(feature = "rfc2136")]
        DnsProviderPlan::Rfc2136 { server, zone, nameservers, tsig } => {
            use crate::rfc2136::{Rfc2136Config, Rfc2136DnsSwitcher, TsigAlgorithm, TsigKey};
            let p = format!("{path}.rfc2136");
            let addr = |text: &str, field: &str| {
                text.parse::<std::net::SocketAddr>().map_err(|e| ConnectError::Missing {
                    path: format!("{p}.{field}"),
                    what: format!("expected ip:port, got {text:?}: {e}"),
                })
            };
            let mut config = Rfc2136Config::new(addr(server, "server")?, zone);
            let servers = nameservers.iter().map(|n| addr(n, "nameservers")).collect::<Result<Vec<_>, _>>()?;
            if !servers.is_empty() {
                config = config.nameservers(servers);
            }
            if let Some(t) = tsig {
                let algorithm = match t.algorithm.as_str() {
                    "hmac-sha384" => TsigAlgorithm::HmacSha384,
                    "hmac-sha512" => TsigAlgorithm::HmacSha512,
                    _ => TsigAlgorithm::HmacSha256,
                };
                let secret = secrets.get(&format!("{p}.tsig_secret"), &t.secret).await?;
                config = config.with_tsig(TsigKey::new(&t.name, algorithm, secret));
            }
            let s = Rfc2136DnsSwitcher::new(config)
                .map_err(|source| ConnectError::Provider { path: p, source: Box::new(source) })?;
            Ok(Arc::new(s))
        }
        #[allow(unreachable_patterns)]
        other => Err(feature(path, other.kind(), other.kind())),
    }
}
