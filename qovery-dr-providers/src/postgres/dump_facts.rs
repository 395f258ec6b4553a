//! What a dump holds, read in the dump's own snapshot, and the comparison a restore is
//! verified by.
//!
//! A dump is taken in a snapshot exported by a transaction of ours (`pg_dump
//! --snapshot`), and that same transaction counts each table's rows (and, if asked, sums a
//! 64-bit hash of each row: order-independent, constant memory on the server) while
//! `pg_dump` runs. A restore is then compared with those facts, not with the source as it
//! is now: the source keeps writing, and during a disaster it may not answer at all.

use tokio_postgres::Client;

use super::dump::TableFacts;
use super::endpoint::pg_error;
use super::sql::RowExt;
use qovery_dr_core::{Lsn, ProviderResult};

/// An exported snapshot, valid while the exporting transaction stays open.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The id `pg_dump --snapshot` takes.
    pub id: String,
    /// The server's WAL position then (written on a primary, replayed on a standby).
    pub lsn: Option<Lsn>,
}

/// Opens a repeatable-read, read-only transaction on `session` and exports its snapshot.
pub(crate) async fn open_snapshot(session: &Client, op: &str, server: &str) -> ProviderResult<Snapshot> {
    session
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| pg_error(op, server, e))?;
    let row = session
        .query_one(
            "SELECT pg_export_snapshot(), (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
             ELSE pg_current_wal_lsn() END)::text",
            &[],
        )
        .await
        .map_err(|e| pg_error(op, server, e))?;
    let id: String = row.col(0)?;
    let lsn: Option<String> = row.col(1)?;
    Ok(Snapshot { id, lsn: lsn.and_then(|l| l.parse().ok()) })
}

/// Every user table's rows (and checksum) as `session` sees them, sorted by name.
pub(crate) async fn table_facts(
    session: &Client,
    op: &str,
    server: &str,
    checksums: bool,
) -> ProviderResult<Vec<TableFacts>> {
    let tables = session
        .query("SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1", &[])
        .await
        .map_err(|e| pg_error(op, server, e))?;
    let mut facts = Vec::with_capacity(tables.len());
    for row in tables {
        let table: String = row.col(0)?;
        let sql = if checksums {
            format!(
                "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)::text \
                 FROM {table} t"
            )
        } else {
            format!("SELECT count(*), NULL::text FROM {table}")
        };
        let row = session.query_one(&sql, &[]).await.map_err(|e| pg_error(op, server, e))?;
        facts.push(TableFacts { table, rows: row.col(0)?, checksum: row.col(1)? });
    }
    Ok(facts)
}

/// Compares a restored copy with what the dump saw: the same tables, rows and checksums
/// (where the dump has them). The error lists every difference.
pub(crate) fn compare(dumped: &[TableFacts], restored: &[TableFacts]) -> Result<(), String> {
    let mut bad = Vec::new();
    for d in dumped {
        match restored.iter().find(|r| r.table == d.table) {
            None => bad.push(format!("{}: missing", d.table)),
            Some(r) if r.rows != d.rows => {
                bad.push(format!("{}: {} rows dumped, {} restored", d.table, d.rows, r.rows))
            }
            Some(r) if d.checksum.is_some() && r.checksum != d.checksum => bad.push(format!("{}: checksum", d.table)),
            Some(_) => {}
        }
    }
    if bad.is_empty() { Ok(()) } else { Err(bad.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(table: &str, rows: i64, checksum: Option<&str>) -> TableFacts {
        TableFacts { table: table.into(), rows, checksum: checksum.map(str::to_owned) }
    }

    #[test]
    fn every_difference_is_named() {
        let dumped = [t("public.a", 10, Some("1")), t("public.b", 5, Some("2")), t("public.c", 1, None)];
        assert_eq!(compare(&dumped, &dumped), Ok(()));
        let restored = [t("public.a", 9, Some("1")), t("public.b", 5, Some("3"))];
        assert_eq!(
            compare(&dumped, &restored),
            Err("public.a: 10 rows dumped, 9 restored, public.b: checksum, public.c: missing".into())
        );
        // A dump without checksums compares counts only.
        let counts_only = [t("public.a", 10, None)];
        assert_eq!(compare(&counts_only, &[t("public.a", 10, Some("x"))]), Ok(()));
    }
}
