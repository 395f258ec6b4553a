//! Resolving a plan's secret references: each once per connection, at run time.
// A build without any provider feature resolves nothing (connect then only names features).
#![cfg_attr(
    not(any(
        feature = "qovery",
        feature = "postgres",
        feature = "registry",
        feature = "cloudflare",
        feature = "rfc2136",
        feature = "etcd"
    )),
    allow(dead_code)
)]

use std::collections::HashMap;

use qovery_dr_core::plan::{DnsProviderPlan, DrPlan, RegistryAuthPlan, StateBackend};
use qovery_dr_core::{SecretRef, SecretString};

use super::ConnectError;

/// Resolved secrets, by reference; a reference used by several fields is read once.
#[derive(Debug, Default)]
pub(crate) struct Secrets {
    resolved: HashMap<SecretRef, SecretString>,
}

impl Secrets {
    /// The value of `reference`, used at plan field `path` (named in errors).
    pub(crate) async fn get(&mut self, path: &str, reference: &SecretRef) -> Result<SecretString, ConnectError> {
        if let Some(v) = self.resolved.get(reference) {
            return Ok(v.clone());
        }
        let value =
            reference.resolve().await.map_err(|source| ConnectError::Secret { path: path.to_owned(), source })?;
        self.resolved.insert(reference.clone(), value.clone());
        Ok(value)
    }
}

/// Every secret reference of a plan, with the field that holds it.
pub(crate) fn references(plan: &DrPlan) -> Vec<(String, SecretRef)> {
    let mut out = Vec::new();
    if let Some(q) = plan.qovery() {
        out.push(("qovery.token".to_owned(), q.token.clone()));
    }
    if let Some(StateBackend::Etcd { password: Some(p), .. } | StateBackend::Postgres { password: Some(p), .. }) =
        &plan.state()
    {
        out.push(("state.password".to_owned(), p.clone()));
    }
    if let Some(store) = &plan.replication().dump_store {
        if let Some(r) = &store.access_key_id {
            out.push(("replication.dump_store_access_key_id".to_owned(), r.clone()));
        }
        if let Some(r) = &store.secret_access_key {
            out.push(("replication.dump_store_secret_access_key".to_owned(), r.clone()));
        }
    }
    for site in [&plan.primary(), &plan.dr()] {
        let prefix = format!("sites.{}", site.role);
        for (n, d) in site.databases().enumerate() {
            if let Some(p) = &d.password {
                out.push((format!("{}.password", site.database_field(n)), p.clone()));
            }
        }
        match &site.registry.auth {
            RegistryAuthPlan::Basic { password, .. } => {
                out.push((format!("{prefix}.registry.auth.password"), password.clone()))
            }
            RegistryAuthPlan::BasicPair { credentials } => {
                out.push((format!("{prefix}.registry.credentials"), credentials.clone()))
            }
            RegistryAuthPlan::Bearer { token } => out.push((format!("{prefix}.registry.auth.token"), token.clone())),
            _ => {}
        }
    }
    for (i, r) in plan.dns().iter().enumerate() {
        match &r.provider {
            Some(DnsProviderPlan::Cloudflare { token, .. }) => {
                out.push((format!("dns[{i}].cloudflare.token"), token.clone()))
            }
            Some(DnsProviderPlan::Rfc2136 { tsig: Some(t), .. }) => {
                out.push((format!("dns[{i}].rfc2136.tsig_secret"), t.secret.clone()))
            }
            _ => {}
        }
    }
    out
}
