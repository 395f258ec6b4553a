//! [`EtcdJournal`]: the engine's journal in etcd, fenced by the lock.

use etcd_client::Client;
use etcd_client::{Compare, CompareOp, GetOptions, SortOrder, SortTarget, Txn, TxnOp};
use qovery_dr_core::async_trait;
use qovery_dr_core::engine::{FailoverLock, Journal, JournalEntry, JournalError, LockGuard};

use super::lock::EtcdFailoverLock;
use super::retry::retrying;

/// The journal of one plan in etcd, written only by the holder of that plan's
/// [`EtcdFailoverLock`]: each append is a transaction that requires the lock key to
/// still have the create revision the guard's holding got (its fencing token), and the
/// entry's key not to exist yet. Reads need no lock.
#[derive(Clone)]
pub struct EtcdJournal {
    client: Client,
    config: super::config::EtcdConfig,
    lock_key: String,
    /// Only to name the holder when an append is refused.
    lock: EtcdFailoverLock,
    plan: String,
}

impl std::fmt::Debug for EtcdJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdJournal").field("plan", &self.plan).field("config", &self.config).finish_non_exhaustive()
    }
}

impl EtcdJournal {
    pub(super) fn new(lock: EtcdFailoverLock, client: Client, config: super::config::EtcdConfig, plan: &str) -> Self {
        let lock_key = format!("{}/locks/{plan}", config.prefix);
        Self { client, config, lock_key, lock, plan: plan.to_owned() }
    }

    fn prefix(&self) -> String {
        format!("{}/journal/{}/", self.config.prefix, self.plan)
    }

    fn io(&self, what: &str, e: impl std::fmt::Display) -> JournalError {
        JournalError::Io {
            path: format!("etcd:{}", self.prefix()),
            source: std::io::Error::other(format!("{what}: {e}; check that etcd is reachable and has a quorum")),
        }
    }
}

#[async_trait]
impl Journal for EtcdJournal {
    async fn append(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        if guard.plan != self.plan {
            return Err(JournalError::Refused(format!(
                "a guard of plan {}'s lock cannot write the journal of plan {}",
                guard.plan, self.plan
            )));
        }
        let token = i64::try_from(guard.token.0).map_err(|e| self.io("the fencing token", e))?;
        let key = format!("{}{:020}", self.prefix(), entry.seq);
        let value = serde_json::to_vec(entry).map_err(|e| self.io("encoding the entry", e))?;
        let lock_key = self.lock_key.clone();
        let txn = Txn::new()
            .when([
                Compare::create_revision(lock_key.clone(), CompareOp::Equal, token),
                Compare::create_revision(key.clone(), CompareOp::Equal, 0),
            ])
            .and_then([TxnOp::put(key.clone(), value.clone(), None)]);
        let budget = self.config.retry_budget();
        let out = retrying(budget, "journal append", || {
            let (mut c, txn) = (self.client.clone(), txn.clone());
            async move { c.txn(txn).await }
        })
        .await
        .map_err(|e| self.io("writing the entry", e))?;
        if out.succeeded() {
            return Ok(());
        }
        // A retried append whose first attempt was applied finds exactly our entry there.
        let existing = retrying(budget, "journal read-back", || {
            let (mut kv, key) = (self.client.kv_client(), key.clone());
            async move { kv.get(key, None).await }
        })
        .await
        .map_err(|e| self.io("reading the entry back", e))?;
        if existing.kvs().first().is_some_and(|kv| kv.value() == value.as_slice()) {
            return Ok(());
        }
        let holder = match self.lock.holder(&self.plan).await {
            Ok(Some(h)) => format!("run {} by {} since {}", h.run_id, h.owner, h.acquired_at),
            Ok(None) => "nobody".to_owned(),
            Err(e) => format!("unknown ({e})"),
        };
        Err(JournalError::Refused(format!(
            "fencing token {token} refused for plan {}: this process lost the failover lock (its lease expired) \
             and the lock is now held by {holder}; this run must stop (or entry {} already exists)",
            self.plan, entry.seq
        )))
    }

    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let options = GetOptions::new().with_prefix().with_sort(SortTarget::Key, SortOrder::Ascend);
        let got = retrying(self.config.retry_budget(), "journal read", || {
            let (mut kv, prefix, options) = (self.client.kv_client(), self.prefix(), options.clone());
            async move { kv.get(prefix, Some(options)).await }
        })
        .await
        .map_err(|e| self.io("reading", e))?;
        got.kvs()
            .iter()
            .enumerate()
            .map(|(i, kv)| {
                serde_json::from_slice(kv.value()).map_err(|e| JournalError::Corrupt {
                    path: format!("etcd:{}", String::from_utf8_lossy(kv.key())),
                    line: i + 1,
                    message: e.to_string(),
                })
            })
            .collect()
    }
}
