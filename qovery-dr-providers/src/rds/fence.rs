//! The parameter-group fence, shared by the RDS instance and Aurora managers.

use std::time::Duration;

use qovery_dr_core::provider::FenceOutcome;
use qovery_dr_core::{ErrorKind, ProviderError, ProviderResult};

use super::api::{PROVIDER, RdsApi};
use crate::postgres::PgEndpoint;
use crate::postgres::endpoint::pg_error;

const OP: &str = "fence_primary";

/// One side of the pair for the fence: its API, its identifier, its SQL endpoint.
pub(crate) struct Side<'a> {
    pub api: &'a RdsApi,
    pub identifier: &'a str,
    pub sql: &'a PgEndpoint,
}

/// How long to wait for a new session to see the group's value, and how often to look.
pub(crate) struct Timing {
    pub timeout: Duration,
    pub poll: Duration,
}

async fn read_only(sql: &PgEndpoint) -> ProviderResult<bool> {
    let label = sql.label();
    let c = sql.connect(OP).await?;
    let row = c
        .query_one("SELECT current_setting('default_transaction_read_only')", &[])
        .await
        .map_err(|e| pg_error(OP, &label, e))?;
    Ok(row.try_get::<_, String>(0).map(|v| v == "on").unwrap_or(false))
}

/// `default_transaction_read_only = 1` in `group` (the primary's DB parameter group),
/// verified in a new session, then every other client session ended.
///
/// Refuses, before changing anything, when the standby uses the same group: the fence
/// would make the promoted standby read-only too.
pub(crate) async fn by_parameter_group(
    primary: Side<'_>,
    standby: Side<'_>,
    group: &str,
    timing: Timing,
) -> ProviderResult<FenceOutcome> {
    let sql = primary.sql;
    let reachable = sql.connect(OP).await.map_err(|e| {
        ProviderError::new(
            e.kind(),
            PROVIDER,
            OP,
            format!("{} cannot be reached, so it is NOT fenced: {}", sql.label(), e.message()),
        )
    })?;
    drop(reachable);
    if read_only(sql).await? {
        return Ok(FenceOutcome::AlreadyFenced);
    }
    let standby_groups = standby.api.describe(standby.identifier).await?.parameter_groups;
    if standby_groups.iter().any(|g| g == group) {
        return Err(ProviderError::new(
            ErrorKind::InvalidInput,
            PROVIDER,
            OP,
            format!(
                "{} uses parameter group {group} too: fencing {} by that group would make the promoted standby \
                 read-only as well. Give the primary a group of its own, or fence by logins. Nothing was changed",
                standby.identifier, primary.identifier
            ),
        ));
    }
    primary.api.set_parameter(group, "default_transaction_read_only", "1").await?;
    // RDS applies a dynamic parameter within seconds; new sessions read it.
    let deadline = tokio::time::Instant::now() + timing.timeout;
    while !read_only(sql).await? {
        if tokio::time::Instant::now() >= deadline {
            return Err(ProviderError::new(
                ErrorKind::Timeout,
                PROVIDER,
                OP,
                format!(
                    "parameter group {group} says default_transaction_read_only = 1, but a new session on {} still \
                     writes after {:?}: is {} using that group? It is NOT fenced",
                    sql.label(),
                    timing.timeout,
                    primary.identifier
                ),
            ));
        }
        tokio::time::sleep(timing.poll.min(Duration::from_secs(2))).await;
    }
    // Sessions opened before the change keep writing: end them.
    let c = sql.connect(OP).await?;
    c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' \
         AND pid <> pg_backend_pid() AND usename <> current_user AND usename NOT LIKE 'rds%'",
        &[],
    )
    .await
    .map_err(|e| pg_error(OP, &sql.label(), e))?;
    Ok(FenceOutcome::Fenced)
}
