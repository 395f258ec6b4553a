//! The Backup & Restore / cross-cloud strategy: `pg_dump -Fd -j N` on the
//! primary, `pg_restore -j N` on the DR side, verification by row counts
//! (and optionally checksums), and a record of the last successful backup
//! that readiness reads for freshness.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use qovery_dr_core::provider::BackupInfo;
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
}

impl BackupRecord {
    /// As the replication status reports it.
    pub fn info(&self) -> BackupInfo {
        BackupInfo::new(self.finished_at, self.size_bytes).with_restore_verified(self.restore_verified)
    }
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
}

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
    /// Dumps into directories under `dir`, `jobs` parallel jobs each way.
    pub fn new(source: PgEndpoint, target: PgEndpoint, dir: impl Into<PathBuf>) -> Self {
        Self { source, target, jobs: 4, dir: dir.into(), bin_dir: None }
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

    fn record_path(&self) -> PathBuf {
        self.dir.join("last-backup.json")
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

    /// Dumps the source into a new directory and records it.
    pub async fn backup(&self) -> ProviderResult<BackupRecord> {
        const OP: &str = "pg_dump";
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| err(ErrorKind::InvalidConfig, OP, format!("{}: {e}", self.dir.display())))?;
        let started = tokio::time::Instant::now();
        let now = Timestamp::now();
        let out = self.dir.join(format!("dump-{}", now.unix_millis()));
        let lsn = match self.source.connect(OP).await {
            Ok(c) => c
                .query_one("SELECT pg_current_wal_lsn()::text", &[])
                .await
                .ok()
                .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten())
                .and_then(|s| s.parse().ok()),
            Err(e) => return Err(e),
        };
        let tables = self.run(OP, "pg_dump", &self.dump_args(&out), self.source.password.as_ref()).await?;
        let record = BackupRecord {
            size_bytes: dir_size(&out).await,
            path: out,
            // Millisecond precision, as the record is stored.
            finished_at: Timestamp::from_unix_millis(Timestamp::now().unix_millis()),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            tables,
            restore_verified: false,
            lsn,
        };
        self.save(&record).await?;
        Ok(record)
    }

    /// The target server.
    pub fn target(&self) -> &PgEndpoint {
        &self.target
    }

    /// Restores a dump into the target.
    pub async fn restore(&self, record: &BackupRecord) -> ProviderResult<Duration> {
        let started = tokio::time::Instant::now();
        self.run("pg_restore", "pg_restore", &self.restore_args(&record.path), self.target.password.as_ref()).await?;
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
        let mut record = self.backup().await?;
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
        let tmp = self.record_path().with_extension("tmp");
        tokio::fs::write(&tmp, json).await.map_err(|e| err(ErrorKind::Transient, "record_backup", e.to_string()))?;
        tokio::fs::rename(&tmp, self.record_path())
            .await
            .map_err(|e| err(ErrorKind::Transient, "record_backup", e.to_string()))
    }

    /// The last successful backup, if one was recorded.
    pub async fn last_backup(&self) -> ProviderResult<Option<BackupRecord>> {
        match tokio::fs::read(self.record_path()).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                err(ErrorKind::Transient, "last_backup", format!("{}: {e}", self.record_path().display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(ErrorKind::Transient, "last_backup", e.to_string())),
        }
    }
}
