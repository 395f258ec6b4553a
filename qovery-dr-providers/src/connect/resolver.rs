//! The authoritative servers of each record, for the engine's DNS step: a switch is
//! done when every one of them answers the new target.

use std::collections::BTreeMap;
use std::sync::Arc;

use qovery_dr_core::provider::AuthoritativeResolver;
use qovery_dr_core::{DnsRecordId, DnsTarget, ErrorKind, ProviderError, ProviderResult, async_trait};

/// Routes each record to the resolver of its authoritative servers; `NotSupported`
/// (naming why) for a record whose servers are not known.
#[derive(Debug, Default)]
pub(super) struct RecordResolvers {
    routes: BTreeMap<DnsRecordId, Arc<dyn AuthoritativeResolver>>,
    unknown: BTreeMap<DnsRecordId, String>,
}

impl RecordResolvers {
    #[allow(dead_code)] // used with the rfc2136 feature
    pub(super) fn route(&mut self, record: DnsRecordId, resolver: Arc<dyn AuthoritativeResolver>) {
        self.routes.insert(record, resolver);
    }

    pub(super) fn unknown(&mut self, record: DnsRecordId, why: String) {
        self.unknown.insert(record, why);
    }

    fn resolver(&self, record: &DnsRecordId) -> ProviderResult<&Arc<dyn AuthoritativeResolver>> {
        self.routes.get(record).ok_or_else(|| {
            let why = self.unknown.get(record).cloned().unwrap_or_else(|| format!("{record} is not in the plan"));
            ProviderError::new(ErrorKind::NotSupported, "authoritative", "nameservers", why)
        })
    }
}

#[async_trait]
impl AuthoritativeResolver for RecordResolvers {
    async fn nameservers(&self, record: &DnsRecordId) -> ProviderResult<Vec<String>> {
        self.resolver(record)?.nameservers(record).await
    }

    async fn lookup(&self, server: &str, record: &DnsRecordId) -> ProviderResult<Option<DnsTarget>> {
        self.resolver(record)?.lookup(server, record).await
    }
}
