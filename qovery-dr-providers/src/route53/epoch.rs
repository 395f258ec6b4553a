//! The failover epoch beside a record: the TXT record `_qdr-epoch.<record>`, replaced
//! by a DELETE of exactly the value read plus a CREATE in one change batch (Route53
//! applies both or neither), as a record swap is.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use qovery_dr_core::{ChangeId, DnsRecordId, ErrorKind, FailoverEpoch, ProviderError, ProviderResult};

use super::error::PROVIDER;
use super::switcher::{NOOP_PREFIX, Route53DnsSwitcher, normalize};

fn invalid(op: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(ErrorKind::InvalidInput, PROVIDER, op, e.to_string())
}

impl Route53DnsSwitcher {
    /// The TXT set at `_qdr-epoch.<record>` and the epoch it holds.
    async fn epoch_set(&self, record: &DnsRecordId, op: &str) -> ProviderResult<Option<(u64, ResourceRecordSet)>> {
        let name = normalize(FailoverEpoch::record_name(record).as_str());
        let out = self
            .attempt(op, false, || {
                self.client
                    .list_resource_record_sets()
                    .hosted_zone_id(&self.config.hosted_zone_id)
                    .start_record_name(format!("{name}."))
                    .start_record_type(RrType::Txt)
                    .max_items(1)
                    .send()
            })
            .await?;
        let set = out
            .resource_record_sets()
            .iter()
            .find(|s| normalize(s.name()) == name && s.r#type() == &RrType::Txt && s.set_identifier().is_none());
        Ok(set.and_then(|s| {
            // Route53 keeps TXT values quoted: `"qdr-epoch=3 run=… mode=…"`.
            let text: String = s.resource_records().iter().map(|r| r.value().replace('"', "")).collect();
            FailoverEpoch::parse_txt(&text).map(|n| (n, s.clone()))
        }))
    }

    pub(super) async fn read_epoch(&self, record: &DnsRecordId) -> ProviderResult<Option<u64>> {
        Ok(self.epoch_set(record, "failover_epoch").await?.map(|(n, _)| n))
    }

    pub(super) async fn publish_epoch(&self, record: &DnsRecordId, epoch: &FailoverEpoch) -> ProviderResult<ChangeId> {
        const OP: &str = "publish_failover_epoch";
        let noop = || ChangeId::new(format!("{NOOP_PREFIX}{}", self.config.hosted_zone_id));
        let held = self.epoch_set(record, OP).await?;
        let name = format!("{}.", normalize(FailoverEpoch::record_name(record).as_str()));
        let new = ResourceRecordSet::builder()
            .name(&name)
            .r#type(RrType::Txt)
            .ttl(60)
            .resource_records(
                ResourceRecord::builder().value(format!("\"{}\"", epoch.txt())).build().map_err(|e| invalid(OP, e))?,
            )
            .build()
            .map_err(|e| invalid(OP, e))?;
        let mut changes = Vec::new();
        match held {
            Some((n, _)) if n == epoch.epoch => return Ok(noop()),
            Some((n, _)) if n > epoch.epoch => {
                return Err(ProviderError::new(
                    ErrorKind::Conflict,
                    PROVIDER,
                    OP,
                    format!("{name} holds epoch {n}, newer than {}; not overwritten", epoch.epoch),
                ));
            }
            Some((_, old)) => changes.push(
                Change::builder()
                    .action(ChangeAction::Delete)
                    .resource_record_set(old)
                    .build()
                    .map_err(|e| invalid(OP, e))?,
            ),
            None => {}
        }
        changes.push(
            Change::builder()
                .action(ChangeAction::Create)
                .resource_record_set(new)
                .build()
                .map_err(|e| invalid(OP, e))?,
        );
        let batch = ChangeBatch::builder()
            .comment(format!("qovery-dr: failover epoch {}", epoch.epoch))
            .set_changes(Some(changes))
            .build()
            .map_err(|e| invalid(OP, e))?;
        match self.send_batch(OP, batch).await {
            Ok(id) => {
                tracing::info!(record = %name, epoch = epoch.epoch, change = %id, "route53 failover epoch published");
                Ok(ChangeId::new(id))
            }
            // The batch's DELETE or CREATE did not match: someone wrote it since our read.
            Err(e) if e.kind() == ErrorKind::Conflict => match self.epoch_set(record, OP).await? {
                Some((n, _)) if n == epoch.epoch => Ok(noop()),
                other => Err(ProviderError::new(
                    ErrorKind::Conflict,
                    PROVIDER,
                    OP,
                    epoch.changed_while_publishing(&name, other.map(|(n, _)| n)),
                )),
            },
            Err(e) => Err(e),
        }
    }
}
