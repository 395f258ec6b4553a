//! Small typed query helpers.

use qovery_dr_core::{Lsn, ProviderError, Timestamp};
use tokio_postgres::Client;

use super::endpoint::pg_error;

pub(crate) async fn one_row(
    client: &Client,
    op: &str,
    server: &str,
    sql: &str,
) -> Result<tokio_postgres::Row, ProviderError> {
    client.query_one(sql, &[]).await.map_err(|e| pg_error(op, server, e))
}

pub(crate) async fn opt_row(
    client: &Client,
    op: &str,
    server: &str,
    sql: &str,
) -> Result<Option<tokio_postgres::Row>, ProviderError> {
    client.query_opt(sql, &[]).await.map_err(|e| pg_error(op, server, e))
}

pub(crate) async fn exec(client: &Client, op: &str, server: &str, sql: &str) -> Result<(), ProviderError> {
    client.batch_execute(sql).await.map_err(|e| pg_error(op, server, e))
}

/// An LSN column read as text (`…::text`); NULL and unparsable values are `None`.
pub(crate) fn lsn(row: &tokio_postgres::Row, idx: usize) -> Option<Lsn> {
    row.try_get::<_, Option<String>>(idx).ok().flatten().and_then(|s| s.parse().ok())
}

/// A timestamp column read as epoch milliseconds (`(extract(epoch from …) * 1000)::bigint`).
pub(crate) fn millis(row: &tokio_postgres::Row, idx: usize) -> Option<Timestamp> {
    row.try_get::<_, Option<i64>>(idx)
        .ok()
        .flatten()
        .and_then(|ms| u64::try_from(ms).ok())
        .map(Timestamp::from_unix_millis)
}

/// Quotes a SQL identifier.
pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a SQL string literal.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Reading a column without panicking: `Row::get` panics on a type mismatch or an
/// unexpected NULL, and tables such as `qovery_dr_locks` are shared with whatever
/// other tool created them.
pub(crate) trait RowExt {
    /// Column `idx` as `T`, or an `InvalidConfig` error naming the column and the mismatch.
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, idx: usize) -> Result<T, ProviderError>;
}

impl RowExt for tokio_postgres::Row {
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(&'a self, idx: usize) -> Result<T, ProviderError> {
        self.try_get::<_, T>(idx).map_err(|e| {
            let name = self.columns().get(idx).map_or("?", |c| c.name());
            ProviderError::new(
                qovery_dr_core::ErrorKind::InvalidConfig,
                super::endpoint::PROVIDER,
                "read a row",
                format!(
                    "column {idx} ({name}) is not of the type qovery-dr reads, or is NULL: {e}; a table qovery-dr \
                     uses may have been created by another tool with other types"
                ),
            )
        })
    }
}
