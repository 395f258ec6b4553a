//! The Backup & Restore / cross-cloud strategy: `pg_dump -Fd -j N` on the
//! primary, `pg_restore -j N` on the DR side, verification by row counts
//! (and optionally checksums), and a record of the last successful backup
//! that readiness reads for freshness.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use qovery_dr_core::provider::{BackupFailure, BackupInfo};
use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult, Timestamp};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::endpoint::{PROVIDER, PgEndpoint};

/// A completed backup, as recorded for readiness.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupRecord {
    /// The dump directory.
    pub path: PathBuf,
    /// When it finished.
    pub finished_at: Timestamp,
    /// Its size on disk.
    pub size_bytes: u64,
    /// How long the dump took, in milliseconds.
    pub duration_ms: u64,
    /// Tables dumped.
    pub tables: u32,
    /// Whether a restore of it was verified.
    pub restore_verified: bool,
    /// The source's WAL position when the dump started (what the copy holds at least).
    #[serde(default)]
    pub lsn: Option<qovery_dr_core::Lsn>,
    /// Where the dump is kept when not on this machine (`s3://bucket/prefix/dump-…`):
    /// `path` was only its staging folder, removed once uploaded.
    #[serde(default)]
    pub stored_at: Option<String>,
    /// Each table's rows (and checksum, when asked for) as the dump saw them, read in the
    /// dump's own snapshot: what a restore of it is verified against, whatever the source
    /// has written since (or whether it still answers).
    #[serde(default)]
    pub contents: Vec<TableFacts>,
}

impl BackupRecord {
    /// As the replication status reports it.
    pub fn info(&self) -> BackupInfo {
        BackupInfo::new(self.finished_at, self.size_bytes).with_restore_verified(self.restore_verified)
    }

    /// The dump's name in its folder or store (`dump-<unix millis>`).
    pub fn name(&self) -> String {
        self.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// One table's contents as a dump saw them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableFacts {
    /// `schema.table`, quoted where needed.
    pub table: String,
    /// Its rows.
    pub rows: i64,
    /// An order-independent checksum of its rows (the sum of each row's 64-bit hash),
    /// when checksums were asked for.
    #[serde(default)]
    pub checksum: Option<String>,
}

/// A restore check: a dump restored into a scratch database and compared with what the
/// dump saw, recorded beside the dumps (`last-verified.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoreCheck {
    /// The dump that was restored.
    pub dump: String,
    /// When the dump finished.
    pub dump_finished_at: Timestamp,
    /// When the check finished.
    pub verified_at: Timestamp,
    /// How long the restore took, in milliseconds.
    pub restore_ms: u64,
    /// Tables compared.
    pub tables: usize,
    /// Whether checksums were compared as well as row counts.
    pub checksums: bool,
}

/// The result of comparing the source with a restored copy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verification {
    /// `schema.table` → (rows in the source, rows restored).
    pub counts: Vec<(String, i64, i64)>,
    /// Tables whose checksums differ (when checksums were asked for).
    pub checksum_mismatches: Vec<String>,
}

impl Verification {
    /// Whether every count (and checksum) matches.
    pub fn ok(&self) -> bool {
        self.counts.iter().all(|(_, a, b)| a == b) && self.checksum_mismatches.is_empty()
    }
}

/// Dumps `source` and restores into `target` with the PostgreSQL client tools.
#[derive(Debug, Clone)]
pub struct PgDumpBackup {
    source: PgEndpoint,
    target: PgEndpoint,
    jobs: u32,
    dir: PathBuf,
    bin_dir: Option<PathBuf>,
    checksums: bool,
    #[cfg(feature = "dump-store")]
    store: Option<super::dump_store::DumpStore>,
    #[cfg(feature = "dump-store")]
    retain: usize,
}

/// The record of the last successful dump.
const LAST_BACKUP: &str = "last-backup.json";
/// The record of the last verified restore check.
const LAST_VERIFIED: &str = "last-verified.json";
/// The record of the last failed attempt.
const LAST_FAILURE: &str = "last-failure.json";

fn err(kind: ErrorKind, op: &str, msg: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

async fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(mut rd) = tokio::fs::read_dir(&p).await else { continue };
        while let Ok(Some(e)) = rd.next_entry().await {
            match e.metadata().await {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

impl PgDumpBackup {
    /// The object store's URL, when dumps go to one (else a local folder).
    pub(crate) fn store_url(&self) -> Option<&str> {
        #[cfg(feature = "dump-store")]
        {
            self.store.as_ref().map(|s| s.url())
        }
        #[cfg(not(feature = "dump-store"))]
        {
            None
        }
    }

    /// Dumps into directories under `dir`, `jobs` parallel jobs each way.
    pub fn new(source: PgEndpoint, target: PgEndpoint, dir: impl Into<PathBuf>) -> Self {
        Self {
            source,
            target,
            jobs: 4,
            dir: dir.into(),
            bin_dir: None,
            checksums: false,
            #[cfg(feature = "dump-store")]
            store: None,
            #[cfg(feature = "dump-store")]
            retain: 3,
        }
    }

    /// Also reads an order-independent checksum of every table in the dump's snapshot, so
    /// that restore checks compare checksums as well as row counts (one full scan of each
    /// table at dump time, beside `pg_dump`'s own).
    pub fn with_checksums(mut self, checksums: bool) -> Self {
        self.checksums = checksums;
        self
    }

    /// Keeps the dumps and their records in an object store; the folder given to
    /// [`new`](Self::new) only stages a dump while it is written or restored.
    #[cfg(feature = "dump-store")]
    pub fn with_store(mut self, store: super::dump_store::DumpStore) -> Self {
        self.store = Some(store);
        self
    }

    /// How many dumps the store keeps (default 3, at least 1): older ones are deleted after
    /// each successful dump, never the one the last verified restore check used.
    #[cfg(feature = "dump-store")]
    pub fn with_retain(mut self, dumps: usize) -> Self {
        self.retain = dumps.max(1);
        self
    }

    /// Where the dumps and records are: the store's URL, else the local folder.
    pub fn location(&self) -> String {
        #[cfg(feature = "dump-store")]
        if let Some(store) = &self.store {
            return store.url().to_owned();
        }
        self.dir.display().to_string()
    }

    /// Parallel jobs for pg_dump and pg_restore.
    pub fn with_jobs(mut self, jobs: u32) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Where `pg_dump`/`pg_restore` are (default: the `PATH`).
    pub fn with_bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bin_dir.as_ref().map_or_else(|| PathBuf::from(name), |d| d.join(name))
    }

    /// The `pg_dump` arguments for a dump into `out` (exposed so a comparison
    /// can run exactly the same command by hand).
    pub fn dump_args(&self, out: &Path) -> Vec<String> {
        let s = &self.source;
        vec![
            "-Fd".into(),
            "-j".into(),
            self.jobs.to_string(),
            "-f".into(),
            out.display().to_string(),
            "-h".into(),
            s.host.clone(),
            "-p".into(),
            s.port.to_string(),
            "-U".into(),
            s.user.clone(),
            "-d".into(),
            s.dbname.clone(),
            "--verbose".into(),
        ]
    }

    /// The `pg_restore` arguments for restoring `dump`.
    pub fn restore_args(&self, dump: &Path) -> Vec<String> {
        let t = &self.target;
        vec![
            "-j".into(),
            self.jobs.to_string(),
            "--clean".into(),
            "--if-exists".into(),
            "--no-owner".into(),
            "-h".into(),
            t.host.clone(),
            "-p".into(),
            t.port.to_string(),
            "-U".into(),
            t.user.clone(),
            "-d".into(),
            t.dbname.clone(),
            dump.display().to_string(),
        ]
    }

    /// Runs a tool, streaming its `--verbose` lines as progress (tracing), and
    /// returns how many lines mentioned a table.
    async fn run(
        &self,
        op: &str,
        tool: &str,
        args: &[String],
        password: Option<&qovery_dr_core::SecretString>,
    ) -> ProviderResult<u32> {
        let mut cmd = Command::new(self.tool(tool));
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p.expose());
        }
        if tool == "pg_restore" {
            // The target may be a fenced primary (read-only by default): the restore is the
            // orchestrator's own session.
            cmd.env("PGOPTIONS", "-c default_transaction_read_only=off");
        }
        let mut child = cmd.spawn().map_err(|e| {
            err(
                ErrorKind::InvalidConfig,
                op,
                format!("cannot run {tool}: {e} (set bin_dir to the PostgreSQL client tools)"),
            )
        })?;
        let mut tables = 0u32;
        let mut tail: Vec<String> = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("table") && (line.contains("dumping contents") || line.contains("processing data")) {
                    tables += 1;
                    tracing::info!(tool, progress = %line, "dump progress");
                }
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
        }
        let status = child.wait().await.map_err(|e| err(ErrorKind::Transient, op, format!("{tool}: {e}")))?;
        if !status.success() {
            return Err(err(ErrorKind::Transient, op, format!("{tool} exited with {status}: {}", tail.join(" | "))));
        }
        Ok(tables)
    }

    /// Dumps the source into a new directory (uploaded to the store, when there is one)
    /// and records it. A failure is recorded too (`last-failure.json`), with its reason.
    pub async fn backup(&self) -> ProviderResult<BackupRecord> {
        match self.take_dump().await {
            Ok(record) => Ok(record),
            Err(e) => {
                self.record_failure("dump", &e).await;
                Err(e)
            }
        }
    }

    async fn take_dump(&self) -> ProviderResult<BackupRecord> {
        const OP: &str = "pg_dump";
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| err(ErrorKind::InvalidConfig, OP, format!("{}: {e}", self.dir.display())))?;
        let started = tokio::time::Instant::now();
        let now = Timestamp::now();
        let out = self.dir.join(format!("dump-{}", now.unix_millis()));
        // Until the dump is recorded (or uploaded), a cancelled or failed run removes it.
        let staging = super::staging::Staging::new(&out);
        // One snapshot for the dump and for what it is verified against: exported by a
        // transaction kept open until pg_dump is done, which reads each table's facts
        // meanwhile.
        let session = self.source.connect(OP).await?;
        let label = self.source.label();
        let snapshot = super::dump_facts::open_snapshot(&session, OP, &label).await?;
        let mut args = self.dump_args(&out);
        args.push(format!("--snapshot={}", snapshot.id));
        let (dumped, contents) = tokio::join!(
            self.run(OP, "pg_dump", &args, self.source.password.as_ref()),
            super::dump_facts::table_facts(&session, OP, &label, self.checksums),
        );
        let _ = session.batch_execute("COMMIT").await;
        let (tables, contents) = match (dumped, contents) {
            (Ok(t), Ok(c)) => (t, c),
            (Err(e), _) | (_, Err(e)) => {
                // A partial dump is no dump: nothing may restore it by mistake.
                staging.remove().await;
                return Err(e);
            }
        };
        let mut record = BackupRecord {
            size_bytes: dir_size(&out).await,
            path: out,
            // Millisecond precision, as the record is stored.
            finished_at: Timestamp::from_unix_millis(Timestamp::now().unix_millis()),
            duration_ms: 0,
            tables,
            restore_verified: false,
            lsn: snapshot.lsn,
            stored_at: None,
            contents,
        };
        #[cfg_attr(not(feature = "dump-store"), allow(unused_mut))]
        let mut staging = Some(staging);
        #[cfg(feature = "dump-store")]
        if let Some(store) = &self.store {
            let name = record.name();
            let uploaded = store.upload_dir(&record.path, &name).await;
            if let Some(s) = staging.take() {
                s.remove().await;
            }
            uploaded?;
            record.stored_at = Some(store.location(&name));
            record.finished_at = Timestamp::from_unix_millis(Timestamp::now().unix_millis());
        }
        record.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.save(&record).await?;
        if let Some(s) = staging {
            s.kept();
        }
        #[cfg(feature = "dump-store")]
        self.prune().await;
        Ok(record)
    }

    /// Deletes the store's dumps beyond the newest `retain`, keeping the one the last
    /// verified restore check used; a failure is a warning (the next dump prunes again).
    #[cfg(feature = "dump-store")]
    async fn prune(&self) {
        let Some(store) = &self.store else { return };
        let verified = match self.last_restore_check().await {
            Ok(check) => check.map(|c| c.dump),
            Err(e) => {
                tracing::warn!(error = %e, "not pruning old dumps: the last restore check could not be read");
                return;
            }
        };
        match store.dump_names().await {
            Ok(mut names) => {
                names.sort_by_key(|n| std::cmp::Reverse(n.trim_start_matches("dump-").parse::<u64>().unwrap_or(0)));
                for old in names.iter().skip(self.retain).filter(|n| Some(*n) != verified.as_ref()) {
                    if let Err(e) = store.delete_dir(old).await {
                        tracing::warn!(dump = %old, error = %e, "an old dump could not be deleted");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "old dumps could not be listed"),
        }
    }

    /// The target server.
    pub fn target(&self) -> &PgEndpoint {
        &self.target
    }

    /// Restores a dump into the target (fetched from the store first, when it is there).
    pub async fn restore(&self, record: &BackupRecord) -> ProviderResult<Duration> {
        self.restore_into(record, &self.target).await
    }

    async fn restore_into(&self, record: &BackupRecord, target: &PgEndpoint) -> ProviderResult<Duration> {
        const OP: &str = "pg_restore";
        let started = tokio::time::Instant::now();
        #[cfg(feature = "dump-store")]
        if let (Some(_), Some(store)) = (&record.stored_at, &self.store) {
            let staging = self.dir.join(format!("restore-{}-{}", record.name(), Timestamp::now().unix_millis()));
            let guard = super::staging::Staging::new(&staging);
            let restored = async {
                store.download_dir(&record.name(), &staging).await?;
                let mut args = self.restore_args(&staging);
                retarget(&mut args, target);
                self.run(OP, "pg_restore", &args, target.password.as_ref()).await
            }
            .await;
            guard.remove().await;
            restored?;
            return Ok(started.elapsed());
        }
        if record.stored_at.is_some() {
            return Err(err(
                ErrorKind::InvalidConfig,
                OP,
                format!(
                    "the dump is at {} but this backup has no store: configure the same dump_location",
                    record.stored_at.as_deref().unwrap_or_default()
                ),
            ));
        }
        let mut args = self.restore_args(&record.path);
        retarget(&mut args, target);
        self.run(OP, "pg_restore", &args, target.password.as_ref()).await?;
        Ok(started.elapsed())
    }

    /// Compares row counts (and, if asked, per-table checksums) of every user
    /// table between the source and the target.
    pub async fn verify(&self, checksums: bool) -> ProviderResult<Verification> {
        const OP: &str = "verify_restore";
        let s = self.source.connect(OP).await?;
        let t = self.target.connect(OP).await?;
        let tables = s
            .query("SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1", &[])
            .await
            .map_err(|e| super::endpoint::pg_error(OP, &self.source.label(), e))?;
        let mut v = Verification::default();
        for row in tables {
            let table: String = super::sql::RowExt::col(&row, 0)?;
            let sql = format!("SELECT count(*) FROM {table}");
            let a: i64 = s
                .query_one(&sql, &[])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(|e| super::endpoint::pg_error(OP, &self.source.label(), e))?;
            // A table missing on the target counts as -1 rows: a mismatch, not an error.
            let b: i64 = t.query_one(&sql, &[]).await.and_then(|r| r.try_get(0)).unwrap_or(-1);
            if checksums {
                let sql = format!("SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {table} x");
                let sa: Option<String> = s.query_one(&sql, &[]).await.ok().and_then(|r| r.try_get(0).ok());
                let sb: Option<String> = t.query_one(&sql, &[]).await.ok().and_then(|r| r.try_get(0).ok());
                if sa != sb {
                    v.checksum_mismatches.push(table.clone());
                }
            }
            v.counts.push((table, a, b));
        }
        Ok(v)
    }

    /// Dump, restore, verify; the record says whether the restore was verified.
    pub async fn backup_and_verify(&self, checksums: bool) -> ProviderResult<BackupRecord> {
        let record = self.backup().await?;
        match self.restore_and_verify(record, checksums).await {
            Ok(record) => Ok(record),
            Err(e) => {
                self.record_failure("restore-check", &e).await;
                Err(e)
            }
        }
    }

    async fn restore_and_verify(&self, mut record: BackupRecord, checksums: bool) -> ProviderResult<BackupRecord> {
        self.restore(&record).await?;
        let v = self.verify(checksums).await?;
        if !v.ok() {
            let bad: Vec<String> = v
                .counts
                .iter()
                .filter(|(_, a, b)| a != b)
                .map(|(t, a, b)| format!("{t}: {a} ≠ {b}"))
                .chain(v.checksum_mismatches.iter().map(|t| format!("{t}: checksum")))
                .collect();
            return Err(err(
                ErrorKind::Conflict,
                "verify_restore",
                format!("the restored copy differs: {}", bad.join(", ")),
            ));
        }
        record.restore_verified = true;
        self.save(&record).await?;
        Ok(record)
    }

    async fn save(&self, record: &BackupRecord) -> ProviderResult<()> {
        let json =
            serde_json::to_vec_pretty(record).map_err(|e| err(ErrorKind::Transient, "record_backup", e.to_string()))?;
        self.write_record(LAST_BACKUP, json).await
    }

    async fn write_record(&self, name: &str, json: Vec<u8>) -> ProviderResult<()> {
        #[cfg(feature = "dump-store")]
        if let Some(store) = &self.store {
            return store.write(name, json).await;
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| err(ErrorKind::Transient, "record_backup", format!("{}: {e}", self.dir.display())))?;
        let path = self.dir.join(name);
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, json).await.map_err(|e| err(ErrorKind::Transient, "record_backup", e.to_string()))?;
        tokio::fs::rename(&tmp, path).await.map_err(|e| err(ErrorKind::Transient, "record_backup", e.to_string()))
    }

    async fn read_record<T: serde::de::DeserializeOwned>(&self, name: &str) -> ProviderResult<Option<T>> {
        let op = "read_backup_record";
        #[cfg(feature = "dump-store")]
        let bytes = match &self.store {
            Some(store) => store.read(name).await?,
            None => read_local(&self.dir.join(name)).await?,
        };
        #[cfg(not(feature = "dump-store"))]
        let bytes = read_local(&self.dir.join(name)).await?;
        bytes
            .map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|e| err(ErrorKind::Transient, op, format!("{name} in {}: {e}", self.location())))
    }

    /// Records a failed attempt; failing to record it is logged, not returned (the
    /// attempt's own error is what the caller needs).
    async fn record_failure(&self, stage: &str, e: &ProviderError) {
        let failure = BackupFailure::new(Timestamp::now(), stage, e.to_string());
        let written = match serde_json::to_vec_pretty(&failure) {
            Ok(json) => self.write_record(LAST_FAILURE, json).await,
            Err(e) => Err(err(ErrorKind::Transient, "record_failure", e.to_string())),
        };
        if let Err(w) = written {
            tracing::warn!(stage, error = %e, record_error = %w, "a failed {stage} could not be recorded");
        }
    }

    /// The last successful backup, if one was recorded.
    pub async fn last_backup(&self) -> ProviderResult<Option<BackupRecord>> {
        self.read_record(LAST_BACKUP).await
    }

    /// The last verified restore check, if one was recorded.
    pub async fn last_restore_check(&self) -> ProviderResult<Option<RestoreCheck>> {
        self.read_record(LAST_VERIFIED).await
    }

    /// The last failed attempt (dump or restore check), if one was recorded.
    pub async fn last_failure(&self) -> ProviderResult<Option<BackupFailure>> {
        self.read_record(LAST_FAILURE).await
    }

    /// What readiness reads: the last dump, when a restore was last verified, and the last
    /// failure when it is newer than the last success of its kind.
    pub async fn backup_info(&self) -> ProviderResult<Option<BackupInfo>> {
        match self.last_backup().await? {
            Some(record) => self.info_of(&record).await.map(Some),
            None => Ok(None),
        }
    }

    /// [`backup_info`](Self::backup_info) for a record already read.
    pub(crate) async fn info_of(&self, record: &BackupRecord) -> ProviderResult<BackupInfo> {
        let check = self.last_restore_check().await?;
        let failure = self.last_failure().await?.filter(|f| match f.stage.as_str() {
            "restore-check" => check.as_ref().is_none_or(|c| f.at > c.verified_at),
            _ => f.at > record.finished_at,
        });
        Ok(record.info().with_last_verified_restore_at(check.map(|c| c.verified_at)).with_last_failure(failure))
    }

    /// Restores the newest dump into a fresh scratch database on the target's server
    /// (`scratch`, dropped and created again, dropped after), compares it with what the
    /// dump saw, and records the check (`last-verified.json`), or the failure with its reason.
    pub async fn check_restore(&self, scratch: &str) -> ProviderResult<RestoreCheck> {
        match self.check_restore_inner(scratch).await {
            Ok(check) => Ok(check),
            Err(e) => {
                self.record_failure("restore-check", &e).await;
                Err(e)
            }
        }
    }

    async fn check_restore_inner(&self, scratch: &str) -> ProviderResult<RestoreCheck> {
        const OP: &str = "check_restore";
        if scratch == self.target.dbname || scratch == self.source.dbname {
            return Err(err(
                ErrorKind::InvalidConfig,
                OP,
                format!("the scratch database {scratch:?} is the dump's source or target: name another one"),
            ));
        }
        let Some(record) = self.last_backup().await? else {
            return Err(err(ErrorKind::NotFound, OP, format!("no dump to check in {}", self.location())));
        };
        if record.contents.is_empty() {
            return Err(err(
                ErrorKind::Conflict,
                OP,
                format!(
                    "{} records no table contents to compare with (taken by an older version): take a new dump",
                    record.name()
                ),
            ));
        }
        let admin = self.target.connect(OP).await?;
        let ident = super::sql::ident(scratch);
        let recreate = format!("DROP DATABASE IF EXISTS {ident} WITH (FORCE)");
        admin.batch_execute(&recreate).await.map_err(|e| super::endpoint::pg_error(OP, &self.target.label(), e))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {ident}"))
            .await
            .map_err(|e| super::endpoint::pg_error(OP, &self.target.label(), e))?;
        let target = self.target.with_dbname(scratch);
        let checked = async {
            let took = self.restore_into(&record, &target).await?;
            let restored = target.connect(OP).await?;
            let seen = super::dump_facts::table_facts(&restored, OP, &target.label(), self.checksums).await?;
            super::dump_facts::compare(&record.contents, &seen).map_err(|bad| {
                err(
                    ErrorKind::Conflict,
                    OP,
                    format!("{} restored into {} differs: {bad}", record.name(), target.label()),
                )
            })?;
            Ok::<_, ProviderError>(took)
        }
        .await;
        if let Err(e) = admin.batch_execute(&recreate).await {
            tracing::warn!(database = scratch, error = %e, "the scratch database could not be dropped");
        }
        let took = checked?;
        let check = RestoreCheck {
            dump: record.name(),
            dump_finished_at: record.finished_at,
            verified_at: Timestamp::from_unix_millis(Timestamp::now().unix_millis()),
            restore_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            tables: record.contents.len(),
            checksums: record.contents.iter().all(|t| t.checksum.is_some()),
        };
        let json =
            serde_json::to_vec_pretty(&check).map_err(|e| err(ErrorKind::Transient, "record_backup", e.to_string()))?;
        self.write_record(LAST_VERIFIED, json).await?;
        Ok(check)
    }
}

/// A local record, `None` when the file is not there.
async fn read_local(path: &Path) -> ProviderResult<Option<Vec<u8>>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(ErrorKind::Transient, "read_backup_record", format!("{}: {e}", path.display()))),
    }
}

/// Points `pg_restore` arguments built for the target at another database of its server.
fn retarget(args: &mut [String], target: &PgEndpoint) {
    if let Some(db) = args.iter().position(|a| a == "-d").and_then(|i| args.get_mut(i + 1)) {
        db.clone_from(&target.dbname);
    }
}
