//! Saving and loading a world, so a simulated world outlives a process (the
//! main example is killed mid-run and resumed). Instants are stored relative
//! to the world's start; simulated time keeps running while no process runs.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use qovery_dr_core::Timestamp;
use tokio::time::Instant;

use super::{Shared, State, World, WorldConfig};

thread_local! {
    static BASE: Cell<Option<Instant>> = const { Cell::new(None) };
}

fn base() -> Instant {
    BASE.with(|b| b.get()).unwrap_or_else(Instant::now)
}

fn to_ms(t: Instant) -> i64 {
    let b = base();
    if t >= b {
        i64::try_from(t.duration_since(b).as_millis()).unwrap_or(i64::MAX)
    } else {
        -i64::try_from(b.duration_since(t).as_millis()).unwrap_or(i64::MAX)
    }
}

fn from_ms(ms: i64) -> Instant {
    let b = base();
    if ms >= 0 {
        b + Duration::from_millis(ms.unsigned_abs())
    } else {
        b.checked_sub(Duration::from_millis(ms.unsigned_abs())).unwrap_or(b)
    }
}

pub(crate) mod instant {
    use serde::{Deserialize, Deserializer, Serializer};
    use tokio::time::Instant;

    pub fn serialize<S: Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(super::to_ms(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        Ok(super::from_ms(i64::deserialize(d)?))
    }
}

pub(crate) mod history {
    use qovery_dr_core::Lsn;
    use serde::{Deserialize, Deserializer, Serializer};
    use tokio::time::Instant;

    pub fn serialize<S: Serializer>(h: &[(Instant, Lsn)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(h.iter().map(|(t, l)| (super::to_ms(*t), *l)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(Instant, Lsn)>, D::Error> {
        Ok(Vec::<(i64, Lsn)>::deserialize(d)?.into_iter().map(|(t, l)| (super::from_ms(t), l)).collect())
    }
}

pub(crate) mod pairs {
    use std::collections::BTreeMap;

    use qovery_dr_core::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &BTreeMap<(String, String), Digest>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<(String, String), Digest>, D::Error> {
        Ok(Vec::<((String, String), Digest)>::deserialize(d)?.into_iter().collect())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    /// Wall time of the save.
    saved_at_unix_ms: u64,
    /// World time elapsed at the save.
    elapsed_ms: u64,
    /// The world's wall-clock epoch.
    wall_base: Timestamp,
    state: State,
}

fn with_base<T>(b: Instant, f: impl FnOnce() -> T) -> T {
    BASE.with(|c| c.set(Some(b)));
    let out = f();
    BASE.with(|c| c.set(None));
    out
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl World {
    /// The world as JSON (secrets of the simulation included: it is a test world).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let now = Instant::now();
        let state = self.lock();
        with_base(self.shared.started, || {
            serde_json::to_string(&SnapshotRef {
                saved_at_unix_ms: unix_ms_now(),
                elapsed_ms: u64::try_from(now.saturating_duration_since(self.shared.started).as_millis())
                    .unwrap_or(u64::MAX),
                wall_base: self.wall_base_now(),
                state: &state,
            })
        })
    }

    /// A world from [`to_json`](Self::to_json). Simulated time continues from
    /// the save plus the real time elapsed since (deployments kept running).
    pub fn from_json(json: &str, config: WorldConfig) -> Result<World, serde_json::Error> {
        let probe: serde_json::Value = serde_json::from_str(json)?;
        let saved_at = probe.get("saved_at_unix_ms").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let elapsed = probe.get("elapsed_ms").and_then(serde_json::Value::as_u64).unwrap_or(0);
        let dead_for = unix_ms_now().saturating_sub(saved_at);
        let since_start = Duration::from_millis(elapsed.saturating_add(dead_for));
        let now = Instant::now();
        let started = now.checked_sub(since_start).unwrap_or(now);
        let snapshot: Snapshot = with_base(started, || serde_json::from_value(probe))?;
        let world = World::with_config(config);
        let (faults, recorder) = super::instruments(started);
        let shared = Shared {
            state: std::sync::Mutex::new(snapshot.state),
            instruments: (
                crate::recorder::RecordingLayer::new(std::sync::Arc::clone(&recorder)),
                crate::fault::FaultLayer::new(std::sync::Arc::clone(&faults)),
            ),
            faults,
            recorder,
            config: std::sync::Mutex::new(config),
            started,
            wall_base: std::sync::Mutex::new(snapshot.wall_base),
            reported_split_brain: Default::default(),
            persist_to: std::sync::Mutex::new(None),
            persisting: tokio::sync::Mutex::new(()),
        };
        drop(world);
        Ok(World { shared: Arc::new(shared) })
    }

    /// Saves the world to `path` after every mutating call from now on
    /// (written to a temporary file, fsynced, then renamed).
    pub fn persist_to(&self, path: impl AsRef<Path>) {
        *self.shared.persist_to.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(path.as_ref().to_path_buf());
    }

    fn wall_base_now(&self) -> Timestamp {
        *self.shared.wall_base.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Saves the world now to the path given to [`persist_to`](Self::persist_to) (no-op without one).
    pub async fn save(&self) {
        self.persist().await;
    }

    pub(crate) async fn persist(&self) {
        let path = self.shared.persist_to.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some(path) = path else { return };
        // One write at a time, each of the state as it is once its turn comes.
        let _turn = self.shared.persisting.lock().await;
        let json = match self.to_json() {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise the simulated world");
                return;
            }
        };
        let result = tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, json.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if !matches!(result, Ok(Ok(()))) {
            tracing::error!(?result, "cannot save the simulated world");
        }
    }
}

#[derive(serde::Serialize)]
struct SnapshotRef<'a> {
    saved_at_unix_ms: u64,
    elapsed_ms: u64,
    wall_base: Timestamp,
    state: &'a State,
}
