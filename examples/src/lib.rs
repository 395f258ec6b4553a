//! Shared helpers for the examples.

use qovery_dr_core::plan::DrPlan;
use qovery_dr_providers::connect::Connected;

/// Connects to the infrastructure `plan` names (`--live`), through
/// [`qovery_dr_providers::connect`]; the examples need the `live` feature for it.
pub async fn connect_live(plan: &DrPlan) -> Result<Connected, String> {
    #[cfg(feature = "live")]
    {
        use qovery_dr_providers::connect::{ConnectOptions, connect};
        connect(plan, ConnectOptions::new()).await.map_err(|e| format!("cannot connect the plan's infrastructure: {e}"))
    }
    #[cfg(not(feature = "live"))]
    {
        let _ = plan;
        Err("--live needs the examples built with the real providers: \
             cargo run -p qovery-dr-examples --features live --example <name> -- --live ..."
            .to_owned())
    }
}

/// Resolves on SIGTERM (what `kill`, systemd and Kubernetes send) or Ctrl-C: a service's
/// cue to stop cleanly.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                eprintln!("warning: cannot watch SIGTERM ({e}); Ctrl-C still stops it");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
