//! Data-loss figures: the estimate before promotion, the drill's measurement, and the
//! `record` step's figure with its evidence.

use std::sync::Arc;
use std::time::Duration;

use super::super::events::Event;
use super::super::exec::{Run, pause};
use super::super::mode::RunMode;
use super::super::output::{RpoOutput, StepOutput};
use super::{StepError, StepResult, millis_u64};
use crate::error::ErrorKind;
use crate::model::{DatabaseId, Timestamp};
use crate::provider::Node;

/// The data loss to expect if the standby were promoted now, and how it was estimated.
pub(crate) fn loss_estimate(
    rpo_end: Option<Timestamp>,
    heartbeat_at: Option<Timestamp>,
    lag: Option<Duration>,
) -> (Option<Duration>, String) {
    match (rpo_end, heartbeat_at, lag) {
        (Some(end), Some(hb), _) => (
            Some(end.saturating_since(hb)),
            format!(
                "the standby's newest heartbeat was written at {hb}; the primary was last known to accept writes at {end}"
            ),
        ),
        (_, _, Some(l)) => (Some(l), format!("replication lag measured at {}", humantime::format_duration(l))),
        _ => (
            None,
            "no heartbeat (or dump) on the standby and no lag measurement: the loss cannot be estimated".to_owned(),
        ),
    }
}

/// The newest point in time the promoted side holds: its newest heartbeat,
/// or for the dump strategy the last restored dump.
pub(super) async fn standby_point(run: &Run, db: &DatabaseId) -> Result<Option<(Timestamp, String)>, StepError> {
    let p = &run.providers.replication;
    if run.plan.replication.mode == crate::provider::ReplicationMode::Dump {
        let s = p.status(db).await?;
        return Ok(s
            .last_backup
            .map(|b| (b.finished_at, format!("the last dump restored on the DR side finished at {}", b.finished_at))));
    }
    let asked = run.parts.clock.now();
    let heartbeat = p.last_heartbeat(db, Node::Standby).await;
    let answered = run.parts.clock.now();
    match heartbeat {
        Ok(h) => Ok(h.map(|h| on_our_clock(&h, asked, answered))),
        Err(e) if e.kind() == ErrorKind::NotSupported => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A heartbeat's write time on the engine's clock, and how it was obtained. With the
/// database's clock at the read (`read_at`), the offset between the two clocks is
/// measured on that very call and taken out, minus the call's whole duration (the read
/// happened somewhere inside it): the result is never later than the truth, so the
/// bound computed from it is never smaller.
fn on_our_clock(h: &crate::provider::Heartbeat, asked: Timestamp, answered: Timestamp) -> (Timestamp, String) {
    let Some(read_at) = h.read_at else {
        return (
            h.written_at,
            format!(
                "heartbeat {} (written {}, the database's clock, taken as ours) is the newest on the DR database",
                h.sequence, h.written_at
            ),
        );
    };
    // ours = theirs - (read_at - asked); the read was at most `answered` on our clock.
    let age = read_at.saturating_since(h.written_at);
    let ours = Timestamp::from_unix_millis(asked.unix_millis().saturating_sub(millis_u64(age)));
    let skew = i128::from(read_at.unix_millis()) - i128::from(asked.unix_millis());
    (
        ours,
        format!(
            "heartbeat {} is the newest on the DR database, written {} before the DR database's clock read {} \
             ({} on this orchestrator's clock; clocks {skew:+} ms apart, measured within {} ms)",
            h.sequence,
            humantime::format_duration(Duration::from_millis(millis_u64(age))),
            read_at,
            ours,
            millis_u64(answered.saturating_since(asked)),
        ),
    )
}

/// The drill's lag measurement, for every database of the site: the figure is the worst.
pub(super) async fn measure_lag(run: &Arc<Run>, id: &str) -> StepResult {
    let mut figures = Vec::new();
    for db in run.plan.primary.database_ids() {
        figures.push((db.clone(), measure_lag_of(run, id, &db).await?));
    }
    Ok(worst(figures))
}

/// One figure for several databases: the largest loss (unmeasurable if any is), with each
/// database's evidence. One database's figure is returned as it is.
fn worst(mut figures: Vec<(DatabaseId, RpoOutput)>) -> StepOutput {
    if figures.len() == 1
        && let Some((_, only)) = figures.pop()
    {
        return StepOutput::Rpo(only);
    }
    let ms = figures.iter().map(|(_, f)| f.rpo_ms).collect::<Option<Vec<u64>>>().and_then(|v| v.into_iter().max());
    let evidence = figures
        .iter()
        .map(|(db, f)| format!("{db}: {}", f.rpo_evidence.as_deref().unwrap_or("no evidence")))
        .collect::<Vec<_>>()
        .join(" | ");
    let head = match ms {
        Some(ms) => format!("the worst of {} databases ({ms} ms)", figures.len()),
        None => format!("not measurable for every one of {} databases", figures.len()),
    };
    StepOutput::Rpo(RpoOutput { rpo_ms: ms, rpo_evidence: Some(format!("{head}: {evidence}")) })
}

async fn measure_lag_of(run: &Arc<Run>, id: &str, db: &DatabaseId) -> Result<RpoOutput, StepError> {
    let p = &run.providers;
    if run.plan.replication.mode == crate::provider::ReplicationMode::Dump {
        let s = p.replication.status(db).await?;
        let now = run.parts.clock.now();
        return Ok(match s.last_backup {
            Some(b) => {
                let age = now.saturating_since(b.finished_at);
                rpo(
                    Some(millis_u64(age)),
                    format!(
                        "the last successful dump finished at {} ({} ago): a failover now would lose the writes since",
                        b.finished_at,
                        humantime::format_duration(age)
                    ),
                )
            }
            None => rpo(None, "no successful dump found: RPO not measurable".to_owned()),
        });
    }
    let hb = p.replication.write_heartbeat(db).await?;
    run.emit(Event::Waiting { step: id.to_owned(), what: format!("heartbeat {} on the standby", hb.sequence) });
    let step = run.parts.options.poll_interval.min(Duration::from_millis(250));
    loop {
        if let Some(seen) = p.replication.last_heartbeat(db, Node::Standby).await?
            && seen.sequence >= hb.sequence
        {
            let lag = run.parts.clock.now().saturating_since(hb.written_at);
            return Ok(rpo(
                Some(millis_u64(lag)),
                format!(
                    "heartbeat {} written at {} reached the standby within {}",
                    hb.sequence,
                    hb.written_at,
                    humantime::format_duration(lag)
                ),
            ));
        }
        pause(step).await;
    }
}

fn rpo(ms: Option<u64>, evidence: String) -> RpoOutput {
    RpoOutput { rpo_ms: ms, rpo_evidence: Some(evidence) }
}

pub(super) async fn record(run: &Arc<Run>) -> StepResult {
    const MEASURE: &str = "measure-replication-lag";
    if run.mode == RunMode::Drill {
        if !run.runbook.steps().any(|s| s.id == MEASURE) {
            return Ok(StepOutput::Rpo(rpo(None, "this drill's runbook has no replication measurement".to_owned())));
        }
        // The measurement precedes this step: its figure is journaled, or the run stops here.
        return run.lock_state().rpo(MEASURE).map(|m| StepOutput::Rpo(m.clone())).ok_or_else(|| {
            StepError::NotReady(format!("{MEASURE} has no journaled output: the drill's RPO cannot be recorded"))
        });
    }
    let mut figures = Vec::new();
    for db in run.plan.primary.database_ids() {
        figures.push((db.clone(), record_of(run, &db).await?));
    }
    Ok(worst(figures))
}

/// The data loss of database `db`, from the journal (fence, catch-up) and its standby.
async fn record_of(run: &Arc<Run>, db: &DatabaseId) -> Result<RpoOutput, StepError> {
    let main = &run.plan.primary.database.id;
    let (final_lsn, end, fenced) = {
        let state = run.lock_state();
        (state.proven_final_lsn_of(db, main), state.rpo_end_of(db, main), state.fence_of(db, main).map(|f| f.fenced))
    };
    let Some(fenced) = fenced else {
        return Err(StepError::NotReady(format!(
            "the fence step's outcome for {db} is not in the journal: the data loss cannot be bounded"
        )));
    };
    if let Some(lsn) = final_lsn {
        return Ok(rpo(
            Some(0),
            format!("zero data loss: the standby replayed the fenced primary's final LSN {lsn} before promotion"),
        ));
    }
    let point = standby_point(run, db).await?;
    let unfenced = !fenced;
    Ok(match (point, end) {
        (Some((at, what)), Some(end)) => {
            let bound = end.saturating_since(at);
            let mut evidence = if unfenced {
                format!(
                    "loss ≤ {}: {what}; the old primary was found unreachable at {end} (it may have accepted writes until then)",
                    humantime::format_duration(bound),
                )
            } else {
                format!("loss ≤ {}: {what}; the old primary was fenced at {end}", humantime::format_duration(bound))
            };
            if unfenced {
                evidence.push_str("; it was not fenced: writes it accepted afterwards are lost too");
            }
            rpo(Some(millis_u64(bound)), evidence)
        }
        _ => rpo(
            None,
            "no heartbeat on the promoted database: the data loss was not measurable; run the heartbeat writer"
                .to_owned(),
        ),
    })
}
