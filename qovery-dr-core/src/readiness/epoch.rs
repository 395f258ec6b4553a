//! The failover epoch check: the promoted database, the environments' variable and the
//! TXT record beside each switched DNS record must hold the same epoch.

use std::collections::BTreeMap;
use std::time::Duration;

use super::check::{CheckCategory, CheckResult, CheckStatus};
use super::throttle::Throttle;
use crate::error::{ErrorKind, ProviderResult};
use crate::model::{EPOCH_VARIABLE, FailoverEpoch};
use crate::plan::DrPlan;
use crate::provider::{Node, Providers, Variable, VariableScope};

/// What one layer holds.
enum Layer {
    /// An epoch (0 when the layer holds none yet).
    Holds(u64),
    /// The provider keeps none (not checked).
    NotSupported,
    /// It could not be read.
    Unreadable(String),
}

/// One provider call, through the evaluation's throttle (concurrency and rate) and
/// timeout; a failure is the layer it leaves (not kept, or unreadable).
async fn bounded<T>(
    throttle: &Throttle,
    timeout: Duration,
    f: impl std::future::Future<Output = ProviderResult<T>>,
) -> Result<T, Layer> {
    match throttle.run(tokio::time::timeout(timeout, f)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.kind() == ErrorKind::NotSupported => Err(Layer::NotSupported),
        Ok(Err(e)) => Err(Layer::Unreadable(e.to_string())),
        Err(_) => Err(Layer::Unreadable(format!("no answer within {}", humantime::format_duration(timeout)))),
    }
}

/// The epoch check, and the epoch the layers agree on (for the metrics).
pub(super) async fn check(
    plan: &DrPlan,
    providers: &Providers,
    throttle: &Throttle,
    timeout: Duration,
) -> (CheckResult, Option<u64>) {
    let mut layers: BTreeMap<String, Layer> = BTreeMap::new();
    // The databases, on both nodes: after a failback the promoted side is the other one.
    for db in plan.primary().databases() {
        let mut newest: Option<u64> = None;
        let mut failure = None;
        for node in [Node::Primary, Node::Standby] {
            match bounded(throttle, timeout, providers.replication.failover_epoch(&db.id, node)).await {
                Ok(e) => newest = Some(newest.unwrap_or(0).max(e.map_or(0, |e: FailoverEpoch| e.epoch))),
                Err(e) => failure = Some(e),
            }
        }
        let l = match (newest, failure) {
            (Some(n), _) => Layer::Holds(n),
            (None, Some(failed)) => failed,
            (None, None) => Layer::Holds(0),
        };
        layers.insert(format!("database {}", db.id), l);
    }
    // The variable: set by the configure stage, which a DNS-only plan does not run.
    if !plan.failover().dns_only {
        let mut newest = 0;
        let mut failure = None;
        for env in plan.dr().environments.iter().chain(plan.primary().environments.iter()) {
            match bounded(throttle, timeout, providers.cluster.list_variables(&VariableScope::Environment(env.clone())))
                .await
            {
                Ok(vars) => newest = newest.max(Variable::failover_epoch_in(&vars)),
                Err(failed) => failure = Some(failed),
            }
        }
        let l = match failure {
            Some(failed) if newest == 0 => failed,
            _ => Layer::Holds(newest),
        };
        layers.insert(format!("variable {EPOCH_VARIABLE}"), l);
    }
    for r in plan.dns() {
        let l = bounded(throttle, timeout, providers.dns.failover_epoch(&r.record))
            .await
            .map_or_else(|failed| failed, |e| Layer::Holds(e.unwrap_or(0)));
        layers.insert(format!("TXT {}", FailoverEpoch::record_name(&r.record)), l);
    }
    verdict(&layers)
}

fn verdict(layers: &BTreeMap<String, Layer>) -> (CheckResult, Option<u64>) {
    let held: Vec<(&String, u64)> =
        layers.iter().filter_map(|(k, l)| if let Layer::Holds(n) = l { Some((k, *n)) } else { None }).collect();
    let unchecked: Vec<String> = layers
        .iter()
        .filter_map(|(k, l)| match l {
            Layer::NotSupported => Some(format!("{k} (not kept by its provider)")),
            Layer::Unreadable(e) => Some(format!("{k} ({e})")),
            Layer::Holds(_) => None,
        })
        .collect();
    let unreadable = layers.values().any(|l| matches!(l, Layer::Unreadable(_)));
    let newest = held.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let behind: Vec<String> =
        held.iter().filter(|(_, n)| *n != newest).map(|(k, n)| format!("{k} holds {n}")).collect();
    let expected = "the same epoch in the promoted database, the environments' variable and each record's TXT";
    let result = |status, observed: String, detail: String| {
        CheckResult::new("failover-epoch", CheckCategory::Parity, status, observed, expected, detail)
    };
    let note = if unchecked.is_empty() { String::new() } else { format!("; not checked: {}", unchecked.join(", ")) };
    if !behind.is_empty() {
        let observed = format!("epoch {newest} in {}, but {}", agreeing(&held, newest), behind.join(", "));
        return (
            result(
                CheckStatus::Fail,
                observed,
                format!(
                    "the layers disagree on the failover epoch: a write path may still reach the side that was \
                     failed over from; find which layer missed the last failover, set it to {newest}{note}"
                ),
            ),
            None,
        );
    }
    let status = if unreadable { CheckStatus::Warn } else { CheckStatus::Pass };
    let observed = if newest == 0 {
        format!("no failover recorded (epoch 0) in {}", held.len())
    } else {
        format!("epoch {newest} in all {}", held.len())
    };
    let detail = if newest == 0 {
        format!("no failover has run yet{note}")
    } else {
        format!("every layer holds the last failover's epoch{note}")
    };
    (result(status, format!("{observed} layer(s)"), detail), Some(newest))
}

fn agreeing(held: &[(&String, u64)], epoch: u64) -> String {
    held.iter().filter(|(_, n)| *n == epoch).map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
}
