//! [`Rfc2136DnsSwitcher`]: record swaps by TSIG-signed compare-and-swap updates.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, RecordType};
use qovery_dr_core::async_trait;
use qovery_dr_core::provider::{
    ChangeStatus, DnsCapabilities, DnsRecordState, DnsSwitcher, GuardDecision, SwitchRequest, SwitchStrategy,
    TargetHealth,
};
use qovery_dr_core::{ChangeId, DnsRecordId, DnsTarget, ErrorKind, FailoverEpoch, ProviderError, ProviderResult};

use super::config::Rfc2136Config;
use super::wire::{PROVIDER, Served, Server, fqdn, parse_target, rcode_error, record_set};

/// A `DnsSwitcher` for self-hosted authoritative DNS, by RFC 2136 dynamic updates.
///
/// Supports [`SwitchStrategy::RecordSwap`] only (A, AAAA or CNAME; a switch may
/// change the type, e.g. from an address to an alias). Health is `Unknown`:
/// plain DNS servers have no health checks.
#[derive(Debug, Clone)]
pub struct Rfc2136DnsSwitcher {
    primary: Server,
    nameservers: Vec<Server>,
    zone: Name,
    ttl: Option<u32>,
}

impl Rfc2136DnsSwitcher {
    /// A switcher for the configured zone. Fails with `InvalidConfig` on a bad zone name or TSIG key.
    pub fn new(config: Rfc2136Config) -> ProviderResult<Self> {
        let signer = config.tsig.as_ref().map(|k| k.signer()).transpose()?;
        let zone = fqdn(&config.zone, "configure")
            .map_err(|e| ProviderError::new(ErrorKind::InvalidConfig, PROVIDER, "configure", e.message().to_owned()))?;
        let server = |addr: SocketAddr| Server { addr, timeout: config.timeout, signer: signer.clone() };
        let nameservers = if config.nameservers.is_empty() { vec![config.primary] } else { config.nameservers };
        Ok(Self {
            primary: server(config.primary),
            nameservers: nameservers.into_iter().map(server).collect(),
            zone,
            ttl: config.ttl,
        })
    }

    /// The record's name, checked to be inside the zone (updates outside it are NOTZONE).
    fn name(&self, record: &DnsRecordId, operation: &str) -> ProviderResult<Name> {
        let name = fqdn(record.as_str(), operation)?;
        if !self.zone.zone_of(&name) {
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                operation,
                format!("{record} is not in zone {}; this switcher only manages that zone", self.zone),
            ));
        }
        Ok(name)
    }

    async fn served(&self, record: &DnsRecordId, operation: &str) -> ProviderResult<Served> {
        let name = self.name(record, operation)?;
        self.primary.address_records(&name, operation).await?.ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                operation,
                format!("{record} has no A, AAAA or CNAME record at {}", self.primary.addr),
            )
        })
    }

    /// The epoch TXT record beside `record`: its name, and the epoch it holds (`None`
    /// when there is none) with the record set as served (for the guarded swap).
    async fn epoch_txt(
        &self,
        record: &DnsRecordId,
        operation: &str,
    ) -> ProviderResult<(Name, Option<(u64, u32, Vec<RData>)>)> {
        let name = self.name(&FailoverEpoch::record_name(record), operation)?;
        let served = self.primary.txt_records(&name, operation).await?;
        let held = served.and_then(|(ttl, rdata)| {
            let text: String = rdata
                .iter()
                .filter_map(|r| match r {
                    RData::TXT(t) => Some(t.txt_data().iter().map(|b| String::from_utf8_lossy(b)).collect::<String>()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" ");
            FailoverEpoch::parse_txt(&text).map(|n| (n, ttl, rdata))
        });
        Ok((name, held))
    }

    /// The change id: the zone and the SOA serial the primary serves now.
    async fn change_id(&self) -> ProviderResult<ChangeId> {
        let serial = self.primary.serial(&self.zone, "switch").await?;
        Ok(ChangeId::new(format!("{}#{serial}", self.zone)))
    }
}

/// RFC 1982 serial arithmetic: whether `a` is at or after `b`.
fn serial_reached(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

#[async_trait]
impl DnsSwitcher for Rfc2136DnsSwitcher {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> DnsCapabilities {
        DnsCapabilities::default().with_record_swap(true)
    }

    fn planes(&self) -> qovery_dr_core::stability::Planes {
        qovery_dr_core::stability::catalogue::rfc2136(&self.primary.addr.to_string())
    }

    async fn failover_epoch(&self, record: &DnsRecordId) -> ProviderResult<Option<u64>> {
        Ok(self.epoch_txt(record, "failover_epoch").await?.1.map(|(n, _, _)| n))
    }

    /// A TXT record `_qdr-epoch.<record>` holding `qdr-epoch=N run=… mode=…`, created if
    /// missing (prerequisite: none there) or swapped if older (prerequisite: exactly the
    /// value read): the same guarded write as a switch.
    async fn publish_failover_epoch(&self, record: &DnsRecordId, epoch: &FailoverEpoch) -> ProviderResult<ChangeId> {
        const OP: &str = "publish_failover_epoch";
        let (name, held) = self.epoch_txt(record, OP).await?;
        let ttl = self.ttl.unwrap_or(60);
        let new = record_set(&name, RecordType::TXT, ttl, &[RData::TXT(TXT::new(vec![epoch.txt()]))]);
        let code = match &held {
            Some((n, _, _)) if *n == epoch.epoch => return self.change_id().await,
            Some((n, _, _)) if *n > epoch.epoch => {
                return Err(ProviderError::new(
                    ErrorKind::Conflict,
                    PROVIDER,
                    OP,
                    format!("{name} holds epoch {n}, newer than {}; not overwritten", epoch.epoch),
                ));
            }
            Some((_, served_ttl, rdata)) => {
                let current = record_set(&name, RecordType::TXT, *served_ttl, rdata);
                self.primary.compare_and_swap(current, new, &self.zone).await?
            }
            None => self.primary.create(new, &self.zone, OP).await?,
        };
        match code {
            ResponseCode::NoError => {
                tracing::info!(record = %name, epoch = epoch.epoch, "rfc2136 failover epoch published");
                self.change_id().await
            }
            // The prerequisite failed: written by someone else between our read and the update.
            ResponseCode::NXRRSet | ResponseCode::YXRRSet | ResponseCode::NXDomain => {
                match self.epoch_txt(record, OP).await?.1 {
                    Some((n, _, _)) if n == epoch.epoch => self.change_id().await,
                    other => Err(ProviderError::new(
                        ErrorKind::Conflict,
                        PROVIDER,
                        OP,
                        epoch.changed_while_publishing(&name.to_string(), other.map(|(n, _, _)| n)),
                    )),
                }
            }
            code => Err(rcode_error(code, self.primary.addr, OP)),
        }
    }

    async fn current(&self, record: &DnsRecordId) -> ProviderResult<DnsRecordState> {
        let served = self.served(record, "current").await?;
        Ok(DnsRecordState::new(record.clone(), served.target(), Duration::from_secs(u64::from(served.ttl))))
    }

    async fn switch(&self, request: &SwitchRequest) -> ProviderResult<ChangeId> {
        request.require_strategy(PROVIDER, SwitchStrategy::RecordSwap)?;
        let (new_type, new_rdata) = parse_target(&request.new_target)?;
        let name = self.name(&request.record, "switch")?;
        let served = self.served(&request.record, "switch").await?;
        let now = served.target();
        if request.guard(PROVIDER, &now)? == GuardDecision::AlreadySwitched {
            return self.change_id().await;
        }
        let ttl = self.ttl.unwrap_or(served.ttl);
        let current = record_set(&name, served.record_type, served.ttl, &served.rdata);
        let new = record_set(&name, new_type, ttl, &new_rdata);
        match self.primary.compare_and_swap(current, new, &self.zone).await? {
            ResponseCode::NoError => {
                tracing::info!(record = %request.record, from = %now, to = %request.new_target, "rfc2136 record swapped");
                self.change_id().await
            }
            // The prerequisite failed: the record changed between our read and the update.
            ResponseCode::NXRRSet | ResponseCode::YXRRSet | ResponseCode::NXDomain => {
                let again = self.served(&request.record, "switch").await?.target();
                if again == request.new_target {
                    self.change_id().await
                } else {
                    Err(request.conflict(PROVIDER, &again))
                }
            }
            code => Err(rcode_error(code, self.primary.addr, "switch")),
        }
    }

    async fn change_status(&self, change: &ChangeId) -> ProviderResult<ChangeStatus> {
        let not_found = || {
            ProviderError::new(
                ErrorKind::NotFound,
                PROVIDER,
                "change_status",
                format!("{change} is not a change of zone {} (expected <zone>#<serial>)", self.zone),
            )
        };
        let (zone, serial) = change.as_str().rsplit_once('#').ok_or_else(not_found)?;
        let serial: u32 = serial.parse().map_err(|_| not_found())?;
        if fqdn(zone, "change_status").map_err(|_| not_found())? != self.zone {
            return Err(not_found());
        }
        for server in &self.nameservers {
            if !serial_reached(server.serial(&self.zone, "change_status").await?, serial) {
                return Ok(ChangeStatus::Pending);
            }
        }
        Ok(ChangeStatus::InSync)
    }

    async fn target_health(&self, _target: &DnsTarget) -> ProviderResult<TargetHealth> {
        Ok(TargetHealth::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_with_wraparound() {
        assert!(serial_reached(5, 5));
        assert!(serial_reached(6, 5));
        assert!(!serial_reached(4, 5));
        assert!(serial_reached(2, u32::MAX), "2 is after 2^32-1 in serial arithmetic");
        assert!(!serial_reached(u32::MAX, 2));
    }
}
