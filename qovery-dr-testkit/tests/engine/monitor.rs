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

/// `m.run` on a task, and the sender that shuts it down.
fn running(m: &Arc<Monitor>) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let m = Arc::clone(m);
    let task = tokio::spawn(async move {
        m.run(async {
            let _ = rx.await;
        })
        .await
    });
    (tx, task)
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
        sink.0
            .lock()
            .unwrap()
            .iter()
            .all(|n| n.check.starts_with("cadence:") || n.check.starts_with("static-stability:")),
        "only never-done drills and the plan's static-stability findings warn at start"
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
    let (tx, task) = running(&m);
    tokio::time::sleep(Duration::from_secs(5 * 60 + 1)).await;
    let _ = tx.send(());
    task.await.unwrap();
    let evaluations = pw.world.recorder().calls_of("cluster.cluster_status").len();
    assert_eq!(evaluations, 6, "at t = 0, 1, 2, 3, 4, 5 minutes");
}

#[tokio::test(start_paused = true)]
async fn shutdown_is_prompt_even_while_a_peer_hangs_mid_evaluation() {
    use qovery_dr_testkit::fault::{FaultAction, Trigger};
    let pw = aws();
    let m = Arc::new(monitor(&pw, Arc::new(Recording::default())));
    m.tick().await;
    assert!(m.latest().is_some(), "the first evaluation's report is kept");
    // Every call now hangs: the next evaluation never completes by itself.
    pw.world.faults().inject("*", Trigger::Always, FaultAction::Hang);
    let (tx, task) = running(&m);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!task.is_finished(), "still evaluating (hung)");
    let asked = tokio::time::Instant::now();
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(1), task).await.expect("run returned after shutdown").unwrap();
    assert!(asked.elapsed() < Duration::from_millis(10), "returned {:?} after shutdown", asked.elapsed());
}

#[derive(Debug, Default)]
struct Refusing;

#[async_trait]
impl Notifier for Refusing {
    async fn notify(&self, _: &Notification) -> Result<(), NotifyError> {
        Err(NotifyError { target: "hooks.example.com".into(), message: "503".into() })
    }
}

#[tokio::test(start_paused = true)]
async fn the_monitor_exports_its_own_health_and_the_latest_report() {
    let pw = aws();
    let m = monitor(&pw, Arc::new(Recording::default()));
    assert!(m.latest().is_none(), "no report before the first evaluation");
    for _ in 0..3 {
        m.tick().await;
    }
    let latest = m.latest().unwrap();
    assert_eq!(latest.plan, "shop-aws-cross-region");
    let text = m.metrics().encode();
    assert!(text.contains("qdr_monitor_evaluations_total{plan=\"shop-aws-cross-region\"} 3"), "{text}");
    let at = latest.checked_at.unix_millis() as f64 / 1000.0;
    assert!(
        text.contains(&format!("qdr_monitor_last_evaluation_timestamp_seconds{{plan=\"shop-aws-cross-region\"}} {at}")),
        "{at} in {text}"
    );
    assert!(text.contains("qdr_monitor_evaluation_duration_seconds{plan="), "{text}");
    // Never-done drills warn from the start: those notifications were sent.
    assert!(
        text.contains("qdr_monitor_notifications_total{plan=\"shop-aws-cross-region\",outcome=\"sent\"}"),
        "{text}"
    );

    // A notifier that refuses: counted as failed.
    let refused = Monitor::new(
        Readiness::new(pw.plan.clone(), pw.providers()).clock(Arc::new(pw.world.clone())),
        Arc::new(Refusing),
        Duration::from_secs(60),
    );
    let (_, first) = refused.tick().await;
    let (_, second) = refused.tick().await;
    let sent = first.len() + second.len();
    assert!(sent > 0, "the never-done drills' warnings were confirmed");
    let text = refused.metrics().encode();
    assert!(
        text.contains(&format!(
            "qdr_monitor_notifications_total{{plan=\"shop-aws-cross-region\",outcome=\"failed\"}} {sent}"
        )),
        "{sent} failed in {text}"
    );
}

/// A receiver that takes an hour to answer.
#[derive(Debug, Default)]
struct Slow(Mutex<u32>);

#[async_trait]
impl Notifier for Slow {
    async fn notify(&self, _: &Notification) -> Result<(), NotifyError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        *self.0.lock().unwrap() += 1;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_receiver_never_delays_the_evaluations() {
    let pw = aws();
    let slow = Arc::new(Slow::default());
    let m = Arc::new(Monitor::new(
        Readiness::new(pw.plan.clone(), pw.providers()).clock(Arc::new(pw.world.clone())),
        slow.clone(),
        Duration::from_secs(60),
    ));
    let (tx, task) = running(&m);
    // The never-done drills' warnings are confirmed at the second evaluation, and their
    // delivery takes hours; the evaluations go on every minute meanwhile.
    tokio::time::sleep(Duration::from_secs(10 * 60 + 1)).await;
    let _ = tx.send(());
    task.await.unwrap();
    let text = m.metrics().encode();
    assert!(text.contains("qdr_monitor_evaluations_total{plan=\"shop-aws-cross-region\"} 11"), "{text}");
    assert_eq!(*slow.0.lock().unwrap(), 0, "the first delivery had not finished");
}
