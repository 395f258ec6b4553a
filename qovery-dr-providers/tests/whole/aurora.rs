//! A plan whose database pair is two instances of one Aurora cluster, through `connect`
//! and the engine: the RDS API on moto, the stack's PostgreSQL servers behind the SQL
//! endpoints, every other peer the stack's own.
//!
//! moto applies `FailoverDBCluster` at once; what Aurora does to the servers is played
//! by the test: once moto shows the new writer, the server behind it has every committed
//! write (Aurora's volume is shared; here, replay is awaited) and leaves recovery; the
//! old writer becomes a reader (here, rewound into a standby).

use std::time::Duration;

use aws_sdk_rds::config::{BehaviorVersion, Credentials, Region};
use qovery_dr_core::engine::{Outcome, RunMode};
use qovery_dr_core::plan::DrPlan;
use qovery_dr_providers::connect::{ConnectOptions, connect};
use qovery_dr_testkit::local_stack::PgNode;

use super::stack::*;

const CLUSTER: &str = "e2e-aurora";
const WRITER: &str = "e2e-aurora-1";
const READER: &str = "e2e-aurora-2";

fn moto_sdk() -> aws_config::SdkConfig {
    let m = crate::dns::moto::moto();
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&m.url)
        .credentials_provider(aws_sdk_rds::config::SharedCredentialsProvider::new(Credentials::new(
            &m.access_key,
            &m.secret_key,
            None,
            None,
            "qdr-test",
        )))
        .build()
}

async fn writer(rds: &aws_sdk_rds::Client) -> String {
    crate::aurora_moto::writer(rds, CLUSTER).await
}

/// Aurora's part of a failover to `new_writer`: once moto shows it, the server behind it
/// replays what the old one wrote, then leaves recovery. Gives up after a minute.
async fn play_failover(rds: &aws_sdk_rds::Client, new_writer: &str, old: &PgNode, new: &PgNode) -> bool {
    for _ in 0..600 {
        if writer(rds).await == new_writer {
            let lsn = old.q("SELECT pg_current_wal_lsn()");
            while new.q(&format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) != "t" {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            new.q("SELECT pg_promote()");
            // The end-of-recovery checkpoint, so that the emulation's own re-protection
            // (pg_rewind) sees the new timeline; Aurora has no such step.
            new.q("CHECKPOINT");
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aurora_pair_from_the_plan_switches_over_and_back_with_failover_db_cluster() {
    let sdk = moto_sdk();
    let rds = aws_sdk_rds::Client::new(&sdk);
    crate::aurora_moto::create(&rds, CLUSTER, (WRITER, READER), None).await;
    let stack = Stack::start().await;
    stack.qovery.add_registry(&format!("http://{}", stack.registry_b.host()));
    let rds_line = |instance: &str| {
        format!("rds = {{ region = \"us-east-1\", instance = \"{instance}\", cluster = \"{CLUSTER}\" }}\n")
    };
    let text = stack
        .plan_toml()
        .replace("resilience = \"cross-region\"", "resilience = \"cross-az\"")
        .replace(
            &format!("port = {}\n", stack.primary.port),
            &format!("port = {}\n{}", stack.primary.port, rds_line(WRITER)),
        )
        .replace(
            &format!("port = {}\n", stack.standby.port),
            &format!("port = {}\n{}", stack.standby.port, rds_line(READER)),
        );
    let plan = DrPlan::load(stack.write_plan(&text)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(plan.primary().database.rds.is_some() && plan.dr().database.rds.is_some(), "{text}");
    let report = qovery_dr_providers::connect::inspect(&plan).await;
    assert!(
        report
            .to_text()
            .contains(&format!("in Aurora cluster {CLUSTER} (us-east-1), writer {WRITER} -> reader {READER}")),
        "{}",
        report.to_text()
    );
    let connected =
        connect(&plan, ConnectOptions::new().with_aws_config(sdk.clone())).await.unwrap_or_else(|e| panic!("{e}"));
    let engine = engine(&connected, &plan).build();

    // Away, under load: the reader becomes the writer through FailoverDBCluster.
    let heartbeat = connected.start_heartbeat().await.unwrap_or_else(|e| panic!("{e}"));
    let load = Load::start(&stack.primary, 120).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (away, played) =
        tokio::join!(engine.run(RunMode::Switchover), play_failover(&rds, READER, &stack.primary, &stack.standby));
    drop((load, heartbeat));
    let away = away.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert!(played, "moto never showed {READER} as the writer");
    assert_eq!(away.outcome, Outcome::Succeeded, "{}", away.to_text());
    assert_eq!(writer(&rds).await, READER, "the cluster's writer moved");
    let on_old: u64 = stack.primary.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    let on_new: u64 = stack.standby.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    assert!(on_old > 100, "the load committed transactions ({on_old})");
    assert_eq!(on_new, on_old, "0 committed rows lost");
    assert_eq!(stack.knot_answer(APP), APP_DR);
    stack.standby.q("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())");

    // Aurora's part: the old writer is a reader of the new one. Re-protection sees it.
    stack.primary.reprotect_as_standby_of(&stack.standby, "aurora_back").unwrap();
    let heartbeat = connected.start_heartbeat_back().await.unwrap_or_else(|e| panic!("{e}"));
    let load = Load::start(&stack.standby, 120).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Back: the original writer takes over again.
    let (back, played) =
        tokio::join!(engine.run(RunMode::Failback), play_failover(&rds, WRITER, &stack.standby, &stack.primary));
    drop((load, heartbeat));
    let back = back.unwrap_or_else(|f| panic!("{}\n{}", f.error, f.report.to_text()));
    assert!(played, "moto never showed {WRITER} as the writer again");
    assert_eq!(back.outcome, Outcome::Succeeded, "{}", back.to_text());
    assert_eq!(writer(&rds).await, WRITER);
    assert_eq!(stack.primary.q("SELECT pg_is_in_recovery()"), "f");
    let on_dr: u64 = stack.standby.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    let on_original: u64 = stack.primary.q("SELECT count(*) FROM pgbench_history").parse().unwrap();
    assert_eq!(on_original, on_dr, "0 committed rows lost on the way back");
    assert_eq!(stack.knot_answer(APP), APP_PRIMARY);
}
