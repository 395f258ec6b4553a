//! A physical pair whose databases both state `rds = { … }`: an [`RdsReplicationManager`]
//! (a read replica, or two instances of one Aurora cluster) instead of the PostgreSQL
//! manager, which cannot promote an RDS instance.

use std::sync::Arc;

use qovery_dr_core::model::RdsDatabase;
use qovery_dr_core::plan::DrPlan;
use qovery_dr_core::provider::{FenceKind, ReplicationManager};

use super::ConnectOptions;
use super::build::{HeartbeatPair, PairManagers, missing, pg_endpoint};
use super::secrets::Secrets;
use crate::postgres::{HeartbeatSetup, PostgresReplicationManager};
use crate::rds::{RdsConfig, RdsFence, RdsInstance, RdsReplicationManager};

/// The fence of the instance `rds` (the plan's `fence`), at `field`.
fn fence(plan: &DrPlan, field: &str, rds: &RdsDatabase) -> Result<RdsFence, super::ConnectError> {
    match plan.replication().fence {
        FenceKind::ReadOnly => match &rds.parameter_group {
            Some(name) => Ok(RdsFence::ParameterGroup { name: name.clone() }),
            None => Err(missing(
                format!("{field}.rds.parameter_group"),
                "the DB parameter group for fence read-only (RDS has no ALTER SYSTEM)",
            )),
        },
        _ => Ok(RdsFence::Logins),
    }
}

/// The managers of the pair: the primary site's `n`th database (`a`) and the DR site's
/// `m`th (`b`). An Aurora pair has a failback manager (the cluster's writer moved back);
/// a read replica has none (a failback needs a new replica, made outside).
pub(super) async fn pair(
    plan: &DrPlan,
    options: &ConnectOptions,
    secrets: &mut Secrets,
    (n, a): (usize, &RdsDatabase),
    (m, b): (usize, &RdsDatabase),
    id: &qovery_dr_core::DatabaseId,
) -> Result<PairManagers, super::ConnectError> {
    let (primary_sql, dr_sql) =
        (pg_endpoint(plan.primary(), n, secrets).await?, pg_endpoint(plan.dr(), m, secrets).await?);
    let (pf, df) = (plan.primary().database_field(n), plan.dr().database_field(m));
    let primary = RdsInstance::new(&a.region, &a.instance, primary_sql.clone());
    let dr = RdsInstance::new(&b.region, &b.instance, dr_sql.clone());
    let setup = HeartbeatSetup { schema: plan.replication().heartbeat_schema.clone() };
    let sdk = super::build::aws_config(options, a.region.clone()).await;
    let build = |config: RdsConfig| {
        let setup = setup.clone();
        Arc::new(RdsReplicationManager::from_sdk_config(&sdk, config).with_sql(|s| s.with_heartbeat_setup(setup)))
            as Arc<dyn ReplicationManager>
    };
    let (forward, back) = match (&a.cluster, &b.cluster) {
        (Some(cluster), Some(_)) => {
            let forward =
                RdsConfig::aurora(id.clone(), cluster, primary.clone(), dr.clone()).with_fence(fence(plan, &pf, a)?);
            let back = RdsConfig::aurora(id.clone(), cluster, dr, primary).with_fence(fence(plan, &df, b)?);
            (build(forward), Some(build(back)))
        }
        _ => (build(RdsConfig::new(id.clone(), primary, dr).with_fence(fence(plan, &pf, a)?)), None),
    };
    // The heartbeat table is created over SQL, as for any PostgreSQL pair.
    let sql = |from, to| {
        Arc::new(PostgresReplicationManager::physical(id.clone(), from, to).with_heartbeat_setup(setup.clone()))
    };
    let heartbeat = HeartbeatPair {
        postgres: Some(sql(primary_sql.clone(), dr_sql.clone())),
        postgres_back: back.is_some().then(|| sql(dr_sql, primary_sql)),
        publication: None,
        publication_back: None,
        database: id.clone(),
    };
    Ok((forward, back, heartbeat))
}
