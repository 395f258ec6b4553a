//! The monitor: metrics, transitions only, hysteresis against flapping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use qovery_dr_core::async_trait;
use qovery_dr_core::monitor::{Monitor, Notification, Notifier, NotifyError};
use qovery_dr_core::provider::ClusterState;
use qovery_dr_core::readiness::{CheckStatus, Readiness};

use super::common::*;

#[derive(Debug, Default)]
struct Recording(Mutex<Vec<Notification>>);

#[async_trait]
impl Notifier for Recording {
    async fn notify(&self, n: &Notification) -> Result<(), NotifyError> {
        self.0.lock().unwrap().push(n.clone());
        Ok(())
    }
}

fn monitor(pw: &qovery_dr_testkit::PlanWorld, sink: Arc<Recording>) -> Monitor {
    Monitor::new(
        Readiness::new(pw.plan.clone(), pw.providers()).clock(Arc::new(pw.world.clone())),
        sink,
        Duration::from_secs(60),
    )
}

#[tokio::test(start_paused = true)]
async fn a_sustained_failure_notifies_once_and_its_recovery_once() {
    let pw = aws();
    let sink = Arc::new(Recording::default());
    let m = monitor(&pw, sink.clone());
    m.tick().await;
    m.tick().await;
    assert!(
        sink.0.lock().unwrap().iter().all(|n| n.check.starts_with("cadence:")),
        "only never-done drills warn at start"
    );
    sink.0.lock().unwrap().clear();
    pw.world.set_cluster_state(&pw.plan.dr().cluster, ClusterState::Error);
    let (_, first) = m.tick().await;
    assert!(first.is_empty(), "one bad evaluation is not confirmed yet");
    let (_, second) = m.tick().await;
    let checks: Vec<&str> = second.iter().map(|n| n.check.as_str()).collect();
    assert!(checks.contains(&"verdict") && checks.iter().any(|c| c.starts_with("cluster:")), "{checks:?}");
    let cluster = second.iter().find(|n| n.check.starts_with("cluster:")).unwrap();
    assert_eq!((cluster.from, cluster.to), (CheckStatus::Pass, CheckStatus::Fail));
    assert!(cluster.summary().contains("PASS → FAIL"), "{}", cluster.summary());
    for _ in 0..5 {
        assert!(m.tick().await.1.is_empty(), "no repeat while nothing changes");
    }
    pw.world.set_cluster_state(&pw.plan.dr().cluster, ClusterState::Running);
    m.tick().await;
    let (_, recovered) = m.tick().await;
    assert!(recovered.iter().any(|n| n.check == "verdict" && n.to == CheckStatus::Pass), "{recovered:?}");
}

#[tokio::test(start_paused = true)]
async fn a_flapping_check_does_not_storm() {
    let pw = aws();
    let sink = Arc::new(Recording::default());
    let m = monitor(&pw, sink.clone());
    m.tick().await;
    m.tick().await;
    sink.0.lock().unwrap().clear();
    for i in 0..20 {
        let state = if i % 2 == 0 { ClusterState::Error } else { ClusterState::Running };
        pw.world.set_cluster_state(&pw.plan.dr().cluster, state);
        m.tick().await;
    }
    assert!(sink.0.lock().unwrap().is_empty(), "{:?}", sink.0.lock().unwrap());
}

#[tokio::test(start_paused = true)]
async fn metrics_carry_the_figures() {
    let pw = aws();
    let m = monitor(&pw, Arc::new(Recording::default()));
    let metrics = m.metrics();
    tokio::time::sleep(Duration::from_secs(10)).await;
    m.tick().await;
    let text = metrics.encode();
    for name in [
        "qdr_ready",
        "qdr_dr_cluster_up",
        "qdr_dns_ready",
        "qdr_images_missing",
        "qdr_replication_lag_seconds",
        "qdr_replication_lag_bytes",
        "qdr_readiness_check",
    ] {
        assert!(text.contains(&format!("{name}{{")), "{name} in {text}");
    }
    assert!(text.contains("qdr_ready{plan=\"shop-aws-cross-region\"} 1.0"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn run_evaluates_on_the_interval_until_shut_down() {
    let pw = aws();
    let sink = Arc::new(Recording::default());
    let m = Arc::new(monitor(&pw, sink.clone()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let m = m.clone();
        async move {
            m.run(async {
                let _ = rx.await;
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_secs(5 * 60 + 1)).await;
    let _ = tx.send(());
    task.await.unwrap();
    let evaluations = pw.world.recorder().calls_of("cluster.cluster_status").len();
    assert_eq!(evaluations, 6, "at t = 0, 1, 2, 3, 4, 5 minutes");
}
