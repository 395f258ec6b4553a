//! [`EtcdFailoverLock`]: a lease-backed lock key per plan.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use qovery_dr_core::async_trait;
use qovery_dr_core::engine::{FailoverLock, FencingToken, LockError, LockGuard, LockHolder};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::EtcdConfig;
use super::journal::EtcdJournal;
use super::retry::retrying;

/// One holding of a plan's lock by this process.
#[derive(Debug)]
struct Held {
    run_id: String,
    lease: i64,
    /// The lock key's create revision: unique to this holding (the fencing token).
    token: i64,
    lost: Arc<AtomicBool>,
    keepalive: JoinHandle<()>,
}

/// This process's holdings, by plan.
#[derive(Debug, Default)]
struct Holdings {
    by_plan: Mutex<HashMap<String, Held>>,
}

/// A failover lock in etcd, shared by every orchestrator that points at the same
/// cluster and prefix. See the [module docs](super).
///
/// The holder's identity (run, operator, since when) is the key's value, so a refused
/// orchestrator says who holds the lock. Losing the lease (no renewal for the TTL) is
/// logged at ERROR, and the journal's writes are refused from then on.
#[derive(Clone)]
pub struct EtcdFailoverLock {
    client: Client,
    config: EtcdConfig,
    holdings: Arc<Holdings>,
}

impl std::fmt::Debug for EtcdFailoverLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdFailoverLock").field("config", &self.config).finish_non_exhaustive()
    }
}

fn backend(plan: &str, what: &str, e: impl std::fmt::Display) -> LockError {
    LockError::Backend {
        plan: plan.to_owned(),
        message: format!("{what}: {e}; check that etcd is reachable and has a quorum"),
    }
}

impl EtcdFailoverLock {
    /// Connects to the cluster (fails if no endpoint answers within the timeout).
    pub async fn connect(config: EtcdConfig) -> Result<Self, LockError> {
        let mut options = ConnectOptions::new().with_timeout(config.timeout).with_connect_timeout(config.timeout);
        if let Some((user, password)) = &config.credentials {
            options = options.with_user(user.clone(), password.expose().to_owned());
        }
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| backend("*", &format!("connecting to etcd at {}", config.endpoints.join(",")), e))?;
        Ok(Self { client, config, holdings: Arc::new(Holdings::default()) })
    }

    /// The journal of `plan` in the same cluster, fenced by this lock: it writes only while
    /// this process holds `plan`'s lock.
    pub fn journal(&self, plan: &str) -> EtcdJournal {
        EtcdJournal::new(self.clone(), self.client.clone(), self.config.clone(), plan)
    }

    fn lock_key(&self, plan: &str) -> String {
        format!("{}/locks/{plan}", self.config.prefix)
    }

    /// Whether this process held `plan`'s lock and lost it (lease expired).
    pub fn lost(&self, plan: &str) -> bool {
        self.holdings
            .by_plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(plan)
            .is_some_and(|h| h.lost.load(Ordering::SeqCst))
    }

    fn spawn_keepalive(&self, plan: &str, lease: i64, lost: Arc<AtomicBool>) -> JoinHandle<()> {
        let mut client = self.client.clone();
        let ttl = self.config.lease_ttl;
        let plan = plan.to_owned();
        tokio::spawn(async move {
            // A third of the TTL: two renewals in a row may fail before the lease is at risk.
            let every = ttl / 3;
            let mut last_ok = Instant::now();
            let mut keeper = None;
            loop {
                tokio::time::sleep(every).await;
                if keeper.is_none() {
                    keeper = client.lease_keep_alive(lease).await.ok();
                }
                let renewed = match keeper.as_mut() {
                    Some((k, stream)) => match k.keep_alive().await {
                        Ok(()) => matches!(stream.message().await, Ok(Some(r)) if r.ttl() > 0),
                        Err(_) => false,
                    },
                    None => false,
                };
                if renewed {
                    last_ok = Instant::now();
                    continue;
                }
                keeper = None;
                if last_ok.elapsed() >= ttl {
                    lost.store(true, Ordering::SeqCst);
                    tracing::error!(
                        plan,
                        lease,
                        "the failover lock's lease expired: this process no longer holds \
                        the lock, and its journal writes will be refused"
                    );
                    return;
                }
                tracing::warn!(plan, lease, "could not renew the failover lock's lease; retrying");
            }
        })
    }

    async fn read_holder(&self, plan: &str) -> Result<Option<(LockHolder, i64)>, LockError> {
        let key = self.lock_key(plan);
        let got = retrying(self.config.retry_budget(), "read lock", || {
            let (mut kv, key) = (self.client.kv_client(), key.clone());
            async move { kv.get(key, None).await }
        })
        .await
        .map_err(|e| backend(plan, "reading the lock", e))?;
        let Some(found) = got.kvs().first() else { return Ok(None) };
        let holder = serde_json::from_slice::<LockHolder>(found.value())
            .map_err(|e| backend(plan, "the lock key does not hold a lock holder", e))?;
        Ok(Some((holder, found.mod_revision())))
    }
}

#[async_trait]
impl FailoverLock for EtcdFailoverLock {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<LockGuard, LockError> {
        let guard = |token: i64| LockGuard {
            plan: plan.to_owned(),
            run_id: holder.run_id.clone(),
            // A create revision is positive.
            token: FencingToken(u64::try_from(token).unwrap_or(0)),
        };
        {
            let held = self.holdings.by_plan.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(h) = held.get(plan)
                && h.run_id == holder.run_id
                && !h.lost.load(Ordering::SeqCst)
            {
                return Ok(guard(h.token));
            }
        }
        let key = self.lock_key(plan);
        let value = serde_json::to_vec(holder).map_err(|e| backend(plan, "encoding the holder", e))?;
        let ttl = i64::try_from(self.config.lease_ttl.as_secs()).unwrap_or(i64::MAX);
        let budget = self.config.retry_budget();
        let mut client = self.client.clone();
        let lease = retrying(budget, "lease grant", || {
            let mut c = self.client.clone();
            async move { c.lease_grant(ttl, None).await }
        })
        .await
        .map_err(|e| backend(plan, "granting a lease", e))?
        .id();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), value, Some(PutOptions::new().with_lease(lease)))])
            .or_else([TxnOp::get(key.clone(), None)]);
        let out = match retrying(budget, "lock txn", || {
            let (mut c, txn) = (self.client.clone(), txn.clone());
            async move { c.txn(txn).await }
        })
        .await
        {
            Ok(out) => out,
            Err(e) => {
                let _ = client.lease_revoke(lease).await;
                return Err(backend(plan, "the lock transaction", e));
            }
        };
        let current = out.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| (kv.value().to_vec(), kv.lease(), kv.create_revision())),
            _ => None,
        });
        // A retried transaction whose first attempt was applied finds the key on our own lease.
        let token = match (&current, out.succeeded()) {
            (_, true) => out.header().map(|h| h.revision()),
            (Some((_, on, created)), false) if *on == lease => Some(*created),
            _ => None,
        };
        if let Some(token) = token {
            let lost = Arc::new(AtomicBool::new(false));
            let keepalive = self.spawn_keepalive(plan, lease, Arc::clone(&lost));
            let previous = self
                .holdings
                .by_plan
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(plan.to_owned(), Held { run_id: holder.run_id.clone(), lease, token, lost, keepalive });
            if let Some(p) = previous {
                p.keepalive.abort();
            }
            tracing::info!(plan, run_id = %holder.run_id, token, lease, "failover lock acquired in etcd");
            return Ok(guard(token));
        }
        let _ = client.lease_revoke(lease).await;
        match current.map(|(v, _, _)| serde_json::from_slice::<LockHolder>(&v)) {
            Some(Ok(other)) => Err(LockError::Held { plan: plan.to_owned(), holder: other }),
            Some(Err(e)) => Err(backend(plan, "the lock key does not hold a lock holder", e)),
            // Deleted between the compare and the read (lease expired): try again.
            None => Err(backend(plan, "the lock changed while being taken", "retry")),
        }
    }

    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError> {
        let mine = {
            let mut held = self.holdings.by_plan.lock().unwrap_or_else(PoisonError::into_inner);
            match held.get(plan) {
                Some(h) if h.run_id == run_id => held.remove(plan),
                _ => None,
            }
        };
        let key = self.lock_key(plan);
        if let Some(h) = mine {
            h.keepalive.abort();
            // Deleting by lease revocation removes exactly our key, never a successor's.
            let revoked = retrying(self.config.retry_budget(), "lease revoke", || {
                let mut c = self.client.clone();
                async move { c.lease_revoke(h.lease).await }
            })
            .await;
            match revoked {
                Ok(_) => {}
                // NotFound: the lease is already gone (expired, or a retried revoke was applied).
                Err(etcd_client::Error::GRpcStatus(s)) if s.code() as i32 == 5 => {}
                Err(e) => return Err(backend(plan, "releasing the lock", e)),
            }
            tracing::info!(plan, run_id, "failover lock released");
            return Ok(());
        }
        // Someone else's holding (an operator override declared that run dead): delete it
        // only if it is still exactly what we read.
        if let Some((holder, revision)) = self.read_holder(plan).await?
            && holder.run_id == run_id
        {
            let txn = Txn::new()
                .when([Compare::mod_revision(key.clone(), CompareOp::Equal, revision)])
                .and_then([TxnOp::delete(key, None)]);
            retrying(self.config.retry_budget(), "release txn", || {
                let (mut c, txn) = (self.client.clone(), txn.clone());
                async move { c.txn(txn).await }
            })
            .await
            .map_err(|e| backend(plan, "releasing another run's lock", e))?;
            tracing::warn!(plan, run_id, "released the failover lock of another run");
        }
        Ok(())
    }

    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        Ok(self.read_holder(plan).await?.map(|(h, _)| h))
    }
}
