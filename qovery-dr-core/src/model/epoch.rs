//! The failover epoch: a number every completed failover, switchover or failback
//! increments, written where every layer can check it (a row in the promoted database,
//! an environment variable of the DR environments, a TXT record beside each switched
//! DNS record), so that a writer left on the old side can tell it is stale.

use crate::model::{DnsRecordId, Timestamp};

/// The environment variable holding the epoch on the environments a run configures.
pub const EPOCH_VARIABLE: &str = "QDR_FAILOVER_EPOCH";

/// One epoch, as recorded.
///
/// ```
/// use qovery_dr_core::{FailoverEpoch, Timestamp};
/// let e = FailoverEpoch::new(3, "run-42", "switchover", Timestamp::from_unix_millis(0));
/// assert_eq!(e.txt(), "qdr-epoch=3 run=run-42 mode=switchover");
/// assert_eq!(FailoverEpoch::parse_txt(&e.txt()), Some(3));
/// assert_eq!(FailoverEpoch::record_name(&"app.example.com".into()).as_str(), "_qdr-epoch.app.example.com");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailoverEpoch {
    /// The number (the first failover makes it 1).
    pub epoch: u64,
    /// The run that made it.
    pub run_id: String,
    /// The run's mode (`failover`, `switchover`, `failback`).
    pub mode: String,
    /// When it was recorded.
    pub at: Timestamp,
}

impl FailoverEpoch {
    /// An epoch made by `run_id`.
    pub fn new(epoch: u64, run_id: impl Into<String>, mode: impl Into<String>, at: Timestamp) -> Self {
        Self { epoch, run_id: run_id.into(), mode: mode.into(), at }
    }

    /// The TXT record's value: `qdr-epoch=N run=ID mode=MODE`.
    pub fn txt(&self) -> String {
        format!("qdr-epoch={} run={} mode={}", self.epoch, self.run_id, self.mode)
    }

    /// The epoch in a TXT value written by [`txt`](Self::txt) (`None` for anything else).
    pub fn parse_txt(value: &str) -> Option<u64> {
        value.split_whitespace().find_map(|w| w.strip_prefix("qdr-epoch=")).and_then(|n| n.parse().ok())
    }

    /// What a provider says when the record `name` changed between its read and its
    /// guarded write of this epoch, and now holds `now`.
    pub fn changed_while_publishing(&self, name: &str, now: Option<u64>) -> String {
        format!(
            "{name} changed while publishing epoch {}: it holds {}",
            self.epoch,
            now.map_or_else(|| "no epoch".to_owned(), |n| format!("epoch {n}"))
        )
    }

    /// The TXT record beside `record`: `_qdr-epoch.<record>`.
    pub fn record_name(record: &DnsRecordId) -> DnsRecordId {
        DnsRecordId::new(format!("_qdr-epoch.{}", record.as_str().trim_end_matches('.')))
    }
}
