//! The RDS manager: the RDS API on moto (what moto emulates) and on a fake (the states
//! moto cannot produce), real PostgreSQL 15 servers behind the SQL endpoints.
//!
//! moto accepts `PromoteReadReplica` but keeps reporting the instance's source and never
//! leaves `available` (checked below): the promoted state, `modifying` / `rebooting`,
//! `StatusInfos`, a lost answer and throttling come from the fake, which plays RDS's part
//! on the real standby (it promotes it) when its promotion completes.
//!
//! Aurora: moto applies `FailoverDBCluster` at once (the reader is the writer on the next
//! read); the `failing-over` state and a lost answer come from the fake. On both, a test
//! task plays Aurora's part on the real standby once the reader is the writer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::config::{BehaviorVersion, Credentials, Region};
use qovery_dr_core::provider::{CatchUp, FenceOutcome, LinkState, PromoteOutcome, ReplicationManager};
use qovery_dr_core::{DatabaseId, ErrorKind};
use qovery_dr_providers::rds::{RdsConfig, RdsFence, RdsInstance, RdsReplicationManager};
use qovery_dr_testkit::local_stack::MotoServer;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::cluster::run;
use super::setup::{self, DB};

fn sdk(timeout: Option<Duration>) -> aws_config::SdkConfig {
    let mut b = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_rds::config::SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "qdr-test",
        )))
        .retry_config(aws_config::retry::RetryConfig::disabled());
    if let Some(t) = timeout {
        b = b.timeout_config(aws_config::timeout::TimeoutConfig::builder().operation_attempt_timeout(t).build());
    }
    b.build()
}

fn config(pair: &setup::Pair, url: &str) -> RdsConfig {
    RdsConfig::new(
        DB,
        RdsInstance::new("us-east-1", "shop", pair.primary.endpoint()),
        RdsInstance::new("us-west-2", "shop-dr", pair.standby.endpoint()),
    )
    .with_endpoint_url(url)
    .with_promote_timing(Duration::from_secs(20), Duration::from_millis(100))
}

/// A primary in us-east-1 and its cross-region read replica in us-west-2, on moto.
async fn moto_pair(moto: &MotoServer) -> aws_sdk_rds::Client {
    let client = |region: &'static str| {
        aws_sdk_rds::Client::from_conf(
            aws_sdk_rds::config::Builder::from(&sdk(None)).region(Region::new(region)).endpoint_url(moto.url()).build(),
        )
    };
    let (east, west) = (client("us-east-1"), client("us-west-2"));
    east.create_db_parameter_group()
        .db_parameter_group_name("shop-pg15")
        .db_parameter_group_family("postgres15")
        .description("the primary's group")
        .send()
        .await
        .unwrap();
    let primary = east
        .create_db_instance()
        .db_instance_identifier("shop")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .master_username("qdr")
        .master_user_password("password1")
        .allocated_storage(20)
        .send()
        .await
        .unwrap();
    let arn = primary.db_instance().unwrap().db_instance_arn().unwrap().to_owned();
    west.create_db_instance_read_replica()
        .db_instance_identifier("shop-dr")
        .source_db_instance_identifier(arn)
        .send()
        .await
        .unwrap();
    east
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_a_cross_region_replica_is_read_fenced_by_parameter_group_and_asked_to_promote() {
    let moto = MotoServer::start().unwrap();
    let east = moto_pair(&moto).await;
    let pair = setup::physical().await;
    let fence = RdsFence::ParameterGroup { name: "shop-pg15".into() };
    let manager = RdsReplicationManager::from_sdk_config(
        &sdk(None),
        config(&pair, &moto.url()).with_fence(fence).with_fence_timeout(Duration::from_secs(20)),
    );
    let db = DatabaseId::new(DB);

    // Status: the API has nothing against the replica; SQL gives the LSNs and the link.
    let s = manager.status(&db).await.unwrap();
    assert_eq!(s.link, LinkState::Streaming, "{s:?}");
    assert!(s.primary_lsn.is_some() && s.standby_replay_lsn.is_some(), "{s:?}");
    assert!(!s.standby_promoted);

    // RDS's part of a dynamic parameter: applied to the server once the group says so.
    let primary_port = pair.primary.port;
    let applier = tokio::spawn({
        let east = east.clone();
        async move {
            loop {
                let out = east.describe_db_parameters().db_parameter_group_name("shop-pg15").send().await.unwrap();
                let set = out.parameters().iter().any(|p| {
                    p.parameter_name() == Some("default_transaction_read_only") && p.parameter_value() == Some("1")
                });
                if set {
                    // ALTER SYSTEM runs outside a transaction: psql runs each -c on its own.
                    let port = primary_port.to_string();
                    run(
                        "psql",
                        &[
                            "-h",
                            "127.0.0.1",
                            "-p",
                            &port,
                            "-U",
                            "postgres",
                            "-d",
                            "postgres",
                            "-c",
                            "ALTER SYSTEM SET default_transaction_read_only = on",
                            "-c",
                            "SELECT pg_reload_conf()",
                        ],
                    );
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    assert_eq!(manager.fence_primary(&db).await.unwrap(), FenceOutcome::Fenced);
    applier.await.unwrap();
    assert_eq!(manager.fence_primary(&db).await.unwrap(), FenceOutcome::AlreadyFenced);
    let err = pair.primary.sql_err("CREATE TABLE after_fence (x int)");
    assert!(err.contains("read-only"), "a new session cannot write: {err}");

    // Catch-up over SQL, as a physical standby.
    let lsn = manager.status(&db).await.unwrap().primary_lsn.unwrap();
    manager.wait_for_catch_up(&db, &CatchUp::new(lsn, Duration::from_secs(20))).await.unwrap();

    // moto accepts PromoteReadReplica but never shows the promotion complete: the
    // manager waits, then says what it last saw.
    let manager = RdsReplicationManager::from_sdk_config(
        &sdk(None),
        config(&pair, &moto.url()).with_promote_timing(Duration::from_secs(2), Duration::from_millis(200)),
    );
    let e = manager.promote_standby(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("still a replica of arn:aws:rds:us-east-1"), "{e}");

    // Errors from the API: an unknown instance is NotFound, naming what to check.
    let other = RdsConfig::new(
        DB,
        RdsInstance::new("us-east-1", "shop", pair.primary.endpoint()),
        RdsInstance::new("us-west-2", "no-such-instance", pair.standby.endpoint()),
    )
    .with_endpoint_url(moto.url());
    let e = RdsReplicationManager::from_sdk_config(&sdk(None), other).status(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("DBInstanceNotFound"), "{e}");
    // And a fence by a group that does not exist refuses before anything changed.
    let fresh = setup::physical().await;
    let missing = RdsReplicationManager::from_sdk_config(
        &sdk(None),
        config(&fresh, &moto.url()).with_fence(RdsFence::ParameterGroup { name: "no-such-group".into() }),
    );
    let e = missing.fence_primary(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    fresh.primary.sql("CREATE TABLE still_writable (x int)");
}

// ----------------------------------------------------------------- Aurora

/// An Aurora PostgreSQL cluster on moto: `shop-1` its writer, `shop-2` a reader; both
/// instances in `group` when given.
async fn moto_aurora(moto: &MotoServer, group: Option<&str>) -> aws_sdk_rds::Client {
    let rds =
        aws_sdk_rds::Client::from_conf(aws_sdk_rds::config::Builder::from(&sdk(None)).endpoint_url(moto.url()).build());
    crate::aurora_moto::create(&rds, "shop-cluster", ("shop-1", "shop-2"), group).await;
    rds
}

fn aurora(pair: &setup::Pair, url: &str) -> RdsConfig {
    RdsConfig::aurora(
        DB,
        "shop-cluster",
        RdsInstance::new("us-east-1", "shop-1", pair.primary.endpoint()),
        RdsInstance::new("us-east-1", "shop-2", pair.standby.endpoint()),
    )
    .with_endpoint_url(url)
    .with_promote_timing(Duration::from_secs(20), Duration::from_millis(100))
}

/// Aurora's part of a failover on the real servers: once the cluster shows `shop-2` as
/// its writer, the standby leaves recovery.
fn play_aurora(rds: aws_sdk_rds::Client, standby_data: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while crate::aurora_moto::writer(&rds, "shop-cluster").await != "shop-2" {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        run("pg_ctl", &["-D", &standby_data, "-w", "promote"]);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_an_aurora_reader_becomes_the_writer_with_failover_db_cluster() {
    let moto = MotoServer::start().unwrap();
    let rds = moto_aurora(&moto, None).await;
    let pair = setup::physical().await;
    let manager = RdsReplicationManager::from_sdk_config(&sdk(None), aurora(&pair, &moto.url()));
    let db = DatabaseId::new(DB);
    assert!(manager.capabilities().reprotect, "Aurora re-protects itself");

    let s = manager.status(&db).await.unwrap();
    assert_eq!(s.link, LinkState::Streaming, "{s:?}");
    assert!(s.primary_lsn.is_some() && !s.standby_promoted, "{s:?}");
    // Before the failover: nothing to re-protect.
    let e = manager.reprotect(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("shop-2 is not the writer"), "{e}");

    pair.primary.sql("CREATE TABLE before_fence (x int)");
    assert_eq!(manager.fence_primary(&db).await.unwrap(), FenceOutcome::Fenced, "the logins fence, over SQL");
    // The volume is shared: nothing to wait for once the reader is an available member.
    let target = manager.status(&db).await.unwrap().primary_lsn.unwrap();
    assert_eq!(manager.wait_for_catch_up(&db, &CatchUp::new(target, Duration::from_secs(5))).await.unwrap(), target);
    let state = manager.promotion_state(&db).await.unwrap();

    let aurora_part = play_aurora(rds.clone(), pair.standby.data.display().to_string());
    assert_eq!(manager.promote_standby(&db).await.unwrap(), PromoteOutcome::Promoted);
    aurora_part.await.unwrap();
    manager.post_promotion_fixups(&db, &state).await.unwrap();
    assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "f");
    pair.standby.sql("CREATE TABLE written_on_the_new_writer (x int)");
    assert_eq!(manager.promote_standby(&db).await.unwrap(), PromoteOutcome::AlreadyPrimary);

    let s = manager.status(&db).await.unwrap();
    assert!(s.standby_promoted, "{s:?}");
    assert_eq!(s.link, LinkState::NotApplicable);
    let r = manager.reprotect(&db).await.unwrap();
    assert!(r.already, "{r:?}");
    assert!(r.notes[0].contains("made shop-1 a reader of cluster shop-cluster"), "{r:?}");

    // An unknown cluster, and a reader that is not a member, are named.
    let other = RdsConfig::aurora(
        DB,
        "no-such-cluster",
        RdsInstance::new("us-east-1", "shop-1", pair.primary.endpoint()),
        RdsInstance::new("us-east-1", "shop-2", pair.standby.endpoint()),
    )
    .with_endpoint_url(moto.url());
    let e = RdsReplicationManager::from_sdk_config(&sdk(None), other).status(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("DBClusterNotFoundFault"), "{e}");
    let stranger = RdsConfig::aurora(
        DB,
        "shop-cluster",
        RdsInstance::new("us-east-1", "shop-2", pair.standby.endpoint()),
        RdsInstance::new("us-east-1", "shop-9", pair.primary.endpoint()),
    )
    .with_endpoint_url(moto.url());
    let stranger = RdsReplicationManager::from_sdk_config(&sdk(None), stranger);
    let s = stranger.status(&db).await.unwrap();
    assert_eq!(s.link, LinkState::Broken("shop-9 is not a member of cluster shop-cluster".into()));
    let e = stranger.wait_for_catch_up(&db, &CatchUp::new(target, Duration::from_secs(1))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let e = stranger.promote_standby(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_group_the_standby_shares_is_refused_before_anything_changes() {
    let moto = MotoServer::start().unwrap();
    let rds = moto_aurora(&moto, Some("shop-aurora")).await;
    let pair = setup::physical().await;
    let fence = RdsFence::ParameterGroup { name: "shop-aurora".into() };
    let manager = RdsReplicationManager::from_sdk_config(&sdk(None), aurora(&pair, &moto.url()).with_fence(fence));
    let e = manager.fence_primary(&DatabaseId::new(DB)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("shop-2 uses parameter group shop-aurora too"), "{e}");
    let out = rds.describe_db_parameters().db_parameter_group_name("shop-aurora").send().await.unwrap();
    assert!(
        !out.parameters().iter().any(|p| p.parameter_name() == Some("default_transaction_read_only")),
        "the group was not changed"
    );
    pair.primary.sql("CREATE TABLE still_writable (x int)");
}

// ------------------------------------------------------------------ the fake

/// What the fake RDS does on `PromoteReadReplica`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Promote {
    /// Applies it and answers.
    Answers,
    /// Applies it and answers too late (the client's attempt timeout is shorter).
    LosesTheAnswer,
    /// Refuses: the instance is backing up.
    Busy,
}

#[derive(Debug)]
struct FakeState {
    status: String,
    source: Option<String>,
    replication: Option<(&'static str, bool, &'static str)>,
    /// Describes left before the promotion completes (then: available, no source).
    promoting: Option<u32>,
    throttle_describes: bool,
    promote_calls: u32,
    standby_data: String,
    /// The Aurora side: the cluster's status, its writer, describes left before a
    /// failover completes, and the failovers asked for.
    cluster_status: String,
    writer: &'static str,
    failing_over: Option<u32>,
    failover_calls: u32,
}

#[derive(Debug, Clone)]
struct FakeRds {
    state: Arc<Mutex<FakeState>>,
    promote: Promote,
}

const NS: &str = "http://rds.amazonaws.com/doc/2014-10-31/";

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_string(format!(
        r#"<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>1</RequestId></ErrorResponse>"#
    ))
}

impl Respond for FakeRds {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let action = body.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or_default().to_owned();
        let mut s = self.state.lock().unwrap();
        match action.as_str() {
            "DescribeDBInstances" => {
                if s.throttle_describes {
                    return error(400, "Throttling", "Rate exceeded");
                }
                if let Some(left) = s.promoting {
                    if left == 0 {
                        // RDS's part: the replica leaves recovery, then shows available.
                        let data = s.standby_data.clone();
                        run("pg_ctl", &["-D", &data, "-w", "promote"]);
                        s.status = "available".into();
                        s.source = None;
                        s.replication = None;
                        s.promoting = None;
                    } else {
                        s.status = if left > 1 { "modifying".into() } else { "rebooting".into() };
                        s.promoting = Some(left - 1);
                    }
                }
                let source = s.source.as_ref().map_or_else(String::new, |a| {
                    format!("<ReadReplicaSourceDBInstanceIdentifier>{a}</ReadReplicaSourceDBInstanceIdentifier>")
                });
                let infos = s.replication.map_or_else(String::new, |(st, normal, msg)| {
                    format!(
                        "<StatusInfos><DBInstanceStatusInfo><StatusType>read replication</StatusType><Normal>{normal}</Normal><Status>{st}</Status><Message>{msg}</Message></DBInstanceStatusInfo></StatusInfos>"
                    )
                });
                ResponseTemplate::new(200).set_body_string(format!(
                    r#"<DescribeDBInstancesResponse xmlns="{NS}"><DescribeDBInstancesResult><DBInstances><DBInstance><DBInstanceIdentifier>shop-dr</DBInstanceIdentifier><DBInstanceStatus>{}</DBInstanceStatus>{source}{infos}</DBInstance></DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeDBInstancesResponse>"#,
                    s.status
                ))
            }
            "DescribeDBClusters" => {
                if let Some(left) = s.failing_over {
                    if left == 0 {
                        let data = s.standby_data.clone();
                        run("pg_ctl", &["-D", &data, "-w", "promote"]);
                        s.writer = "shop-2";
                        s.cluster_status = "available".into();
                        s.failing_over = None;
                    } else {
                        s.failing_over = Some(left - 1);
                    }
                }
                let members: String = ["shop-1", "shop-2"]
                    .iter()
                    .map(|id| {
                        format!(
                            "<DBClusterMember><DBInstanceIdentifier>{id}</DBInstanceIdentifier><IsClusterWriter>{}</IsClusterWriter></DBClusterMember>",
                            *id == s.writer
                        )
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_string(format!(
                    r#"<DescribeDBClustersResponse xmlns="{NS}"><DescribeDBClustersResult><DBClusters><DBCluster><DBClusterIdentifier>shop-cluster</DBClusterIdentifier><Status>{}</Status><DBClusterMembers>{members}</DBClusterMembers></DBCluster></DBClusters></DescribeDBClustersResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeDBClustersResponse>"#,
                    s.cluster_status
                ))
            }
            "FailoverDBCluster" => {
                s.failover_calls += 1;
                if s.failing_over.is_none() && s.writer != "shop-2" {
                    s.cluster_status = "failing-over".into();
                    s.failing_over = Some(2);
                }
                let answer = ResponseTemplate::new(200).set_body_string(format!(
                    r#"<FailoverDBClusterResponse xmlns="{NS}"><FailoverDBClusterResult><DBCluster><DBClusterIdentifier>shop-cluster</DBClusterIdentifier><Status>failing-over</Status></DBCluster></FailoverDBClusterResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></FailoverDBClusterResponse>"#
                ));
                match self.promote {
                    Promote::LosesTheAnswer => answer.set_delay(Duration::from_secs(3)),
                    _ => answer,
                }
            }
            "PromoteReadReplica" => {
                s.promote_calls += 1;
                if self.promote == Promote::Busy {
                    return error(400, "InvalidDBInstanceState", "DB instance shop-dr is not in available state.");
                }
                if s.promoting.is_none() && s.source.is_some() {
                    s.status = "modifying".into();
                    s.promoting = Some(3);
                }
                let answer = ResponseTemplate::new(200).set_body_string(format!(
                    r#"<PromoteReadReplicaResponse xmlns="{NS}"><PromoteReadReplicaResult><DBInstance><DBInstanceIdentifier>shop-dr</DBInstanceIdentifier><DBInstanceStatus>modifying</DBInstanceStatus></DBInstance></PromoteReadReplicaResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></PromoteReadReplicaResponse>"#
                ));
                match self.promote {
                    Promote::LosesTheAnswer => answer.set_delay(Duration::from_secs(3)),
                    _ => answer,
                }
            }
            other => error(400, "InvalidAction", &format!("the fake does not do {other}")),
        }
    }
}

async fn fake(pair: &setup::Pair, promote: Promote) -> (MockServer, Arc<Mutex<FakeState>>) {
    let state = Arc::new(Mutex::new(FakeState {
        status: "available".into(),
        source: Some("arn:aws:rds:us-east-1:123456789012:db:shop".into()),
        replication: Some(("replicating", true, "")),
        promoting: None,
        throttle_describes: false,
        promote_calls: 0,
        standby_data: pair.standby.data.display().to_string(),
        cluster_status: "available".into(),
        writer: "shop-1",
        failing_over: None,
        failover_calls: 0,
    }));
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(FakeRds { state: Arc::clone(&state), promote })
        .mount(&server)
        .await;
    (server, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_waits_through_modifying_and_rebooting_until_the_replica_is_a_writable_primary() {
    let pair = setup::physical().await;
    let (server, state) = fake(&pair, Promote::Answers).await;
    let manager = RdsReplicationManager::from_sdk_config(&sdk(None), config(&pair, &server.uri()));
    let db = DatabaseId::new(DB);
    assert_eq!(manager.status(&db).await.unwrap().link, LinkState::Streaming);
    assert_eq!(manager.fence_primary(&db).await.unwrap(), FenceOutcome::Fenced, "the logins fence, over SQL");
    assert_eq!(manager.promote_standby(&db).await.unwrap(), PromoteOutcome::Promoted);
    assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "f", "the replica is a primary");
    pair.standby.sql("CREATE TABLE written_after_promotion (x int)");
    // Again: already a primary, no second PromoteReadReplica.
    assert_eq!(manager.promote_standby(&db).await.unwrap(), PromoteOutcome::AlreadyPrimary);
    assert_eq!(state.lock().unwrap().promote_calls, 1);
    let s = manager.status(&db).await.unwrap();
    assert!(s.standby_promoted, "{s:?}");
    assert_eq!(s.link, LinkState::NotApplicable);
    let e = manager.reprotect(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotSupported);
    assert!(e.to_string().contains("CreateDBInstanceReadReplica"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_the_promotion_is_resolved_by_reading_the_instance() {
    let pair = setup::physical().await;
    let (server, state) = fake(&pair, Promote::LosesTheAnswer).await;
    let manager =
        RdsReplicationManager::from_sdk_config(&sdk(Some(Duration::from_millis(500))), config(&pair, &server.uri()));
    // The request applied, its answer lost: the manager polls and sees the promotion complete.
    assert_eq!(manager.promote_standby(&DatabaseId::new(DB)).await.unwrap(), PromoteOutcome::Promoted);
    assert_eq!(state.lock().unwrap().promote_calls, 1, "not sent twice");
    assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "f");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_replica_a_broken_link_and_throttling_are_named() {
    let pair = setup::physical().await;
    let (server, state) = fake(&pair, Promote::Busy).await;
    let manager = RdsReplicationManager::from_sdk_config(&sdk(None), config(&pair, &server.uri()));
    let db = DatabaseId::new(DB);
    let e = manager.promote_standby(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("wait until it is available"), "{e}");
    assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "t", "nothing promoted");

    // The API's replication status overrides a SQL view that still looks fine.
    state.lock().unwrap().replication = Some(("error", false, "Replication has stopped due to an IO error"));
    let s = manager.status(&db).await.unwrap();
    assert_eq!(s.link, LinkState::Broken("read replication error: Replication has stopped due to an IO error".into()));
    assert!(s.standby_replay_lsn.is_some(), "the SQL facts are still there: {s:?}");

    state.lock().unwrap().throttle_describes = true;
    let e = manager.status(&db).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aurora_failover_whose_answer_is_lost_is_followed_through_failing_over() {
    let pair = setup::physical().await;
    let (server, state) = fake(&pair, Promote::LosesTheAnswer).await;
    let manager =
        RdsReplicationManager::from_sdk_config(&sdk(Some(Duration::from_millis(500))), aurora(&pair, &server.uri()));
    let db = DatabaseId::new(DB);
    assert_eq!(manager.status(&db).await.unwrap().link, LinkState::Streaming);
    // A failover in progress (someone else's, or RDS's own) is a link down, and no time to
    // start another.
    state.lock().unwrap().cluster_status = "failing-over".into();
    let s = manager.status(&db).await.unwrap();
    assert_eq!(s.link, LinkState::Down("cluster shop-cluster is failing over".into()));
    let e = manager.wait_for_catch_up(&db, &CatchUp::new(s.primary_lsn.unwrap(), Duration::from_secs(1))).await;
    assert_eq!(e.unwrap_err().kind(), ErrorKind::Conflict);
    state.lock().unwrap().cluster_status = "available".into();

    // The request applied, its answer lost: polled through failing-over, never sent twice.
    assert_eq!(manager.promote_standby(&db).await.unwrap(), PromoteOutcome::Promoted);
    assert_eq!(state.lock().unwrap().failover_calls, 1, "not sent twice");
    assert_eq!(pair.standby.sql("SELECT pg_is_in_recovery()"), "f");
    assert!(manager.status(&db).await.unwrap().standby_promoted);
}
