//! [`PgFailoverLock`]: a session advisory lock per plan, with the holder's identity
//! in a table others can read, and [`PgJournal`], the engine's journal in a table,
//! fenced by the lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use qovery_dr_core::async_trait;
use qovery_dr_core::engine::{
    FailoverLock, FencingToken, Journal, JournalEntry, JournalError, LockError, LockGuard, LockHolder,
};
use tokio::sync::Mutex;
use tokio_postgres::Client;

use super::endpoint::PgEndpoint;

/// The first key of every qovery-dr advisory lock ("QDR"): the second is `hashtext(plan)`.
const LOCK_CLASS: i32 = 0x0051_4452;

/// Created on connect; the transaction-level advisory lock (`LOCK_CLASS`, 0) serialises orchestrators that
/// start at once (concurrent `CREATE ... IF NOT EXISTS` can fail on the catalog).
const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(5325906, 0);
CREATE TABLE IF NOT EXISTS qovery_dr_locks (
    plan text PRIMARY KEY,
    run_id text NOT NULL,
    owner text NOT NULL,
    acquired_at text NOT NULL,
    token bigint NOT NULL,
    backend_pid integer NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS qovery_dr_lock_tokens;
CREATE TABLE IF NOT EXISTS qovery_dr_journal (
    plan text NOT NULL,
    seq bigint NOT NULL,
    entry text NOT NULL,
    PRIMARY KEY (plan, seq)
);
COMMIT;";

/// The holding is alive: the session that registered it still holds the advisory lock.
const ALIVE: &str = "EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted \
    AND p.pid = l.backend_pid AND p.classid = $2::int4::oid AND p.objid = hashtext(l.plan)::oid \
    AND p.objsubid = 2)";

fn backend(plan: &str, what: &str, e: impl std::fmt::Display) -> LockError {
    LockError::Backend { plan: plan.to_owned(), message: format!("{what}: {e}") }
}

/// A tokio-postgres error with the server's message and SQLSTATE (its `Display` is just "db error").
fn db(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

#[derive(Debug)]
struct Held {
    run_id: String,
    token: i64,
}

#[derive(Debug, Default)]
struct Shared {
    held: StdMutex<HashMap<String, Held>>,
}

/// A failover lock in a PostgreSQL database that runs outside both sites: a session-level
/// advisory lock held on a dedicated connection, so it is released when that session ends
/// (the process died, or the server dropped the connection). The holder's identity is in
/// `qovery_dr_locks`, readable by every orchestrator. Needs `CREATE` on the database (the
/// tables are created on connect) and, to take a lock over by operator override, the right
/// to terminate the dead holder's backend (`pg_signal_backend`).
///
/// How fast a dead holder's lock frees is how fast PostgreSQL notices the session is gone:
/// at once when the process dies (its socket closes), after the server's TCP keepalive
/// settings when the machine vanishes. Set `tcp_keepalives_idle` accordingly.
#[derive(Debug, Clone)]
pub struct PgFailoverLock {
    endpoint: PgEndpoint,
    session: Arc<Mutex<Option<Client>>>,
    shared: Arc<Shared>,
}

impl PgFailoverLock {
    /// Connects the lock's dedicated session and creates the tables if needed.
    pub async fn connect(endpoint: PgEndpoint) -> Result<Self, LockError> {
        let client = endpoint.connect("lock").await.map_err(|e| backend("*", "connecting the lock session", e))?;
        client.batch_execute(SCHEMA).await.map_err(|e| backend("*", "creating the lock and journal tables", db(e)))?;
        Ok(Self { endpoint, session: Arc::new(Mutex::new(Some(client))), shared: Arc::new(Shared::default()) })
    }

    /// The journal of `plan` in the same database, fenced by this lock.
    pub fn journal(&self, plan: &str) -> PgJournal {
        PgJournal { endpoint: self.endpoint.clone(), plan: plan.to_owned(), conn: Arc::new(Mutex::new(None)) }
    }

    async fn read_holder(client: &Client, plan: &str) -> Result<Option<(LockHolder, i32)>, LockError> {
        let sql = format!(
            "SELECT run_id, owner, acquired_at, backend_pid FROM qovery_dr_locks l WHERE plan = $1 AND {ALIVE}"
        );
        let row = client
            .query_opt(&sql, &[&plan, &LOCK_CLASS])
            .await
            .map_err(|e| backend(plan, "reading the holder", db(e)))?;
        let Some(row) = row else { return Ok(None) };
        // qovery_dr_locks may have been created by another tool with other types: no panic.
        let col = |e| backend(plan, "reading the holder (qovery_dr_locks has unexpected column types)", db(e));
        let at: String = row.try_get(2).map_err(col)?;
        let holder = LockHolder {
            run_id: row.try_get(0).map_err(col)?,
            owner: row.try_get(1).map_err(col)?,
            acquired_at: serde_json::from_value(serde_json::Value::String(at))
                .map_err(|e| backend(plan, "the holder's acquired_at", e))?,
        };
        Ok(Some((holder, row.try_get(3).map_err(col)?)))
    }
}

#[async_trait]
impl FailoverLock for PgFailoverLock {
    async fn acquire(&self, plan: &str, holder: &LockHolder) -> Result<LockGuard, LockError> {
        let guard = |token: i64| LockGuard {
            plan: plan.to_owned(),
            run_id: holder.run_id.clone(),
            // Tokens come from a sequence starting at 1.
            token: FencingToken(u64::try_from(token).unwrap_or(0)),
        };
        let mut session = self.session.lock().await;
        if session.as_ref().is_none_or(Client::is_closed) {
            // A new session holds none of the old one's locks.
            self.shared.held.lock().unwrap_or_else(PoisonError::into_inner).clear();
            *session = Some(
                self.endpoint.connect("lock").await.map_err(|e| backend(plan, "reconnecting the lock session", e))?,
            );
        }
        let Some(client) = session.as_ref() else { return Err(backend(plan, "no lock session", "reconnect")) };
        let mine = self
            .shared
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(plan)
            .filter(|h| h.run_id == holder.run_id)
            .map(|h| h.token);
        if let Some(token) = mine {
            return Ok(guard(token));
        }
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, hashtext($2))", &[&LOCK_CLASS, &plan])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| backend(plan, "taking the advisory lock", db(e)))?;
        if !got {
            // The holder registers itself just after taking the advisory lock: give it a moment.
            for _ in 0..40 {
                if let Some((other, _)) = Self::read_holder(client, plan).await? {
                    return Err(LockError::Held { plan: plan.to_owned(), holder: other });
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            return Err(backend(
                plan,
                "the advisory lock is held by a session that registered no holder for 2 s",
                "another program uses the same advisory lock key? retry",
            ));
        }
        let at = serde_json::to_value(holder.acquired_at)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let token: i64 = client
            .query_one(
                "INSERT INTO qovery_dr_locks (plan, run_id, owner, acquired_at, token, backend_pid) \
                 VALUES ($1, $2, $3, $4, nextval('qovery_dr_lock_tokens'), pg_backend_pid()) \
                 ON CONFLICT (plan) DO UPDATE SET run_id = EXCLUDED.run_id, owner = EXCLUDED.owner, \
                 acquired_at = EXCLUDED.acquired_at, token = EXCLUDED.token, backend_pid = EXCLUDED.backend_pid \
                 RETURNING token",
                &[&plan, &holder.run_id, &holder.owner, &at],
            )
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| backend(plan, "registering the holder (qovery_dr_locks.token must be bigint)", db(e)))?;
        self.shared
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(plan.to_owned(), Held { run_id: holder.run_id.clone(), token });
        tracing::info!(plan, run_id = %holder.run_id, token, "failover lock acquired in postgres");
        Ok(guard(token))
    }

    async fn release(&self, plan: &str, run_id: &str) -> Result<(), LockError> {
        let session = self.session.lock().await;
        let Some(client) = session.as_ref().filter(|c| !c.is_closed()) else { return Ok(()) };
        let mine = {
            let mut held = self.shared.held.lock().unwrap_or_else(PoisonError::into_inner);
            match held.get(plan) {
                Some(h) if h.run_id == run_id => held.remove(plan),
                _ => None,
            }
        };
        if let Some(h) = mine {
            client
                .execute("DELETE FROM qovery_dr_locks WHERE plan = $1 AND token = $2", &[&plan, &h.token])
                .await
                .map_err(|e| backend(plan, "unregistering the holder", db(e)))?;
            client
                .query_one("SELECT pg_advisory_unlock($1, hashtext($2))", &[&LOCK_CLASS, &plan])
                .await
                .map_err(|e| backend(plan, "releasing the advisory lock", db(e)))?;
            return Ok(());
        }
        // Another run's holding, declared dead by an operator override: end its session.
        if let Some((other, pid)) = Self::read_holder(client, plan).await?
            && other.run_id == run_id
        {
            client
                .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .map_err(|e| backend(plan, "terminating the dead holder's session (needs pg_signal_backend)", db(e)))?;
            // Its advisory lock goes with its session, shortly after.
            for _ in 0..50 {
                if Self::read_holder(client, plan).await?.is_none() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            tracing::warn!(plan, run_id, pid, "ended the session of another run's failover lock");
        }
        Ok(())
    }

    async fn holder(&self, plan: &str) -> Result<Option<LockHolder>, LockError> {
        let session = self.session.lock().await;
        match session.as_ref().filter(|c| !c.is_closed()) {
            Some(client) => Ok(Self::read_holder(client, plan).await?.map(|(h, _)| h)),
            None => {
                let client = self.endpoint.connect("lock").await.map_err(|e| backend(plan, "connecting", e))?;
                Ok(Self::read_holder(&client, plan).await?.map(|(h, _)| h))
            }
        }
    }
}

/// The journal of one plan in `qovery_dr_journal`, written only by the holder of that plan's
/// [`PgFailoverLock`]: each insert requires the holder row with the guard's token, whose
/// session still holds the advisory lock, and takes a share lock on that row, so a successor
/// registering itself waits for an insert in flight. Reads need no lock.
#[derive(Debug, Clone)]
pub struct PgJournal {
    endpoint: PgEndpoint,
    plan: String,
    conn: Arc<Mutex<Option<Client>>>,
}

impl PgJournal {
    fn io(&self, what: &str, e: impl std::fmt::Display) -> JournalError {
        JournalError::Io {
            path: format!("postgres:{}/qovery_dr_journal/{}", self.endpoint.label(), self.plan),
            source: std::io::Error::other(format!("{what}: {e}")),
        }
    }

    async fn with_conn<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
        what: &str,
    ) -> Result<T, JournalError> {
        let mut conn = self.conn.lock().await;
        if conn.as_ref().is_none_or(Client::is_closed) {
            *conn = Some(self.endpoint.connect("journal").await.map_err(|e| self.io("connecting", e))?);
        }
        let Some(client) = conn.as_ref() else { return Err(self.io(what, "no connection")) };
        f(client).await.map_err(|e| self.io(what, db(e)))
    }
}

#[async_trait]
impl Journal for PgJournal {
    async fn append(&self, guard: &LockGuard, entry: &JournalEntry) -> Result<(), JournalError> {
        if guard.plan != self.plan {
            return Err(JournalError::Refused(format!(
                "a guard of plan {}'s lock cannot write the journal of plan {}",
                guard.plan, self.plan
            )));
        }
        let token = i64::try_from(guard.token.0).map_err(|e| self.io("the fencing token", e))?;
        let text = serde_json::to_string(entry).map_err(|e| self.io("encoding the entry", e))?;
        let seq = i64::try_from(entry.seq).map_err(|e| self.io("sequence", e))?;
        let plan = self.plan.clone();
        let sql = format!(
            "WITH l AS (SELECT 1 FROM qovery_dr_locks l WHERE plan = $1 AND token = $4 AND {ALIVE} FOR SHARE) \
             INSERT INTO qovery_dr_journal (plan, seq, entry) SELECT $1, $3, $5 FROM l \
             ON CONFLICT (plan, seq) DO NOTHING"
        );
        // One statement when the append goes through; the reads below only explain a refusal.
        let refusal = self
            .with_conn(
                async |c| {
                    if c.execute(&sql, &[&plan, &LOCK_CLASS, &seq, &token, &text]).await? == 1 {
                        return Ok(None);
                    }
                    let alive = c
                        .query_opt(
                            &format!("SELECT 1 FROM qovery_dr_locks l WHERE plan = $1 AND token = $3 AND {ALIVE}"),
                            &[&plan, &LOCK_CLASS, &token],
                        )
                        .await?
                        .is_some();
                    let existing: Option<String> = c
                        .query_opt("SELECT entry FROM qovery_dr_journal WHERE plan = $1 AND seq = $2", &[&plan, &seq])
                        .await?
                        .map(|r| r.try_get(0))
                        .transpose()?;
                    Ok(Some((alive, existing)))
                },
                "writing the entry",
            )
            .await?;
        match refusal {
            None => Ok(()),
            // A retried append whose first attempt was applied.
            Some((true, Some(e))) if e == text => Ok(()),
            Some((true, _)) => Err(JournalError::Refused(format!(
                "entry {} of plan {} already exists with other content; the journal is never overwritten",
                entry.seq, self.plan
            ))),
            Some((false, _)) => Err(JournalError::Refused(format!(
                "fencing token {token} refused for plan {}: it is not the live holding of the failover lock \
                 (this run lost it, or a later holding replaced it); this run must stop",
                self.plan
            ))),
        }
    }

    async fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let plan = self.plan.clone();
        let rows = self
            .with_conn(
                async |c| {
                    c.query("SELECT seq, entry FROM qovery_dr_journal WHERE plan = $1 ORDER BY seq", &[&plan]).await
                },
                "reading",
            )
            .await?;
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                let text: String = r.try_get(1).map_err(|e| JournalError::Corrupt {
                    path: format!("postgres:qovery_dr_journal/{}", self.plan),
                    line: i + 1,
                    message: format!("the entry column is not text: {}", db(e)),
                })?;
                serde_json::from_str(&text).map_err(|e| JournalError::Corrupt {
                    path: format!("postgres:qovery_dr_journal/{}", self.plan),
                    line: i + 1,
                    message: e.to_string(),
                })
            })
            .collect()
    }
}
