//! DNS: the target's health, the guarded switch, its verification, the old TTL.

use std::sync::Arc;
use std::time::Duration;

use super::super::events::Event;
use super::super::exec::{Run, pause};
use super::super::interlock::Interlock;
use super::super::output::{AuthoritativeCheck, HealthOutput, StepOutput, SwitchDnsOutput};
use super::{StepError, StepResult, millis_u64};
use crate::error::ErrorKind;
use crate::model::{DnsRecordId, DnsTarget};
use crate::provider::{SwitchRequest, TargetHealth};

pub(super) async fn verify_health(run: &Arc<Run>, id: &str, record: &DnsRecordId, target: &DnsTarget) -> StepResult {
    let dns = &run.providers.dns;
    let provider_checks = dns.capabilities_for(record).health_checks;
    // The plan can turn health checks off for a record (no health check exists for the
    // target): then "unknown" is the expected answer, as in the switch step's interlock.
    let planned = run.plan.dns.iter().find(|r| &r.record == record).is_none_or(|r| r.health_check);
    loop {
        match dns.target_health(target).await? {
            TargetHealth::Healthy => return Ok(health(TargetHealth::Healthy, None)),
            TargetHealth::Unknown if !provider_checks => {
                return Ok(health(TargetHealth::Unknown, Some("the DNS provider has no health checks")));
            }
            TargetHealth::Unknown if !planned => {
                return Ok(health(TargetHealth::Unknown, Some("health checks are off for this record in the plan")));
            }
            h => {
                run.emit(Event::Waiting { step: id.to_owned(), what: format!("{target} to be healthy (now {h:?})") });
                pause(run.parts.options.poll_interval).await;
            }
        }
    }
}

pub(super) async fn switch_dns(
    run: &Arc<Run>,
    id: &str,
    record: &DnsRecordId,
    from: &DnsTarget,
    to: &DnsTarget,
) -> StepResult {
    let dns = &run.providers.dns;
    let plan_record = run.plan.dns.iter().find(|r| &r.record == record);
    let strategy = plan_record.map_or(crate::provider::SwitchStrategy::RecordSwap, |r| r.strategy);
    let health = dns.target_health(to).await?;
    let checked = dns.capabilities_for(record).health_checks && plan_record.is_some_and(|r| r.health_check);
    let healthy = match health {
        TargetHealth::Healthy => true,
        TargetHealth::Unknown => !checked,
        TargetHealth::Unhealthy => false,
    };
    run.interlock(
        id,
        Interlock::UnhealthyDnsTarget,
        healthy,
        format!("DNS target {to} of {record} is {health:?} by the DNS provider's health checks"),
    )
    .await?;
    let request =
        SwitchRequest { record: record.clone(), strategy, expected_current: from.clone(), new_target: to.clone() };
    let change = match dns.switch(&request).await {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::Conflict => {
            let cur = dns.current(record).await?;
            return Err(StepError::NotReady(format!(
                "{record} points at {}, neither the primary target {from} nor the DR target {to}: another owner changed it; not overwriting",
                cur.target
            )));
        }
        Err(e) => return Err(e.into()),
    };
    run.emit(Event::Waiting { step: id.to_owned(), what: format!("{record} change {change} to be in sync") });
    until_in_sync(run, &change).await?;
    let (epoch, epoch_note) = publish_epoch(run, id, record).await?;
    let provider_in_sync_at = run.parts.clock.now();
    let authoritative = authoritative_servers_serve(run, id, record, to).await?;
    Ok(StepOutput::SwitchDns(SwitchDnsOutput {
        change,
        provider_in_sync_at,
        in_sync_at: run.parts.clock.now(),
        authoritative,
        epoch,
        epoch_note,
    }))
}

/// The run's failover epoch beside the switched record, through the provider's guarded
/// write, once the switch is in sync; waits until that change is in sync too.
async fn publish_epoch(
    run: &Arc<Run>,
    id: &str,
    record: &DnsRecordId,
) -> Result<(Option<u64>, Option<String>), StepError> {
    let Some(epoch) = super::epoch::of_run(run) else { return Ok((None, None)) };
    let dns = &run.providers.dns;
    let change = match dns.publish_failover_epoch(record, &epoch).await {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotSupported => {
            tracing::warn!(record = %record, error = %e, "no failover epoch published beside the record");
            return Ok((None, Some(e.to_string())));
        }
        Err(e) if e.kind() == ErrorKind::Conflict => {
            return Err(StepError::NotReady(format!(
                "a newer failover epoch than {} is published beside {record}: another run switched it since; \
                 not overwriting ({e})",
                epoch.epoch
            )));
        }
        Err(e) => return Err(e.into()),
    };
    run.emit(Event::Waiting {
        step: id.to_owned(),
        what: format!("epoch {} beside {record} to be in sync", epoch.epoch),
    });
    until_in_sync(run, &change).await?;
    Ok((Some(epoch.epoch), None))
}

/// Polls the DNS provider until `change` is in sync; retryable errors are polled
/// through (the step's own timeout bounds the wait).
async fn until_in_sync(run: &Arc<Run>, change: &crate::model::ChangeId) -> Result<(), StepError> {
    loop {
        match run.providers.dns.change_status(change).await {
            Ok(crate::provider::ChangeStatus::InSync) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e.into()),
        }
        pause(run.parts.options.poll_interval).await;
    }
}

/// Waits until every authoritative server of `record` answers `to` (asked directly,
/// through [`Providers::resolver`](crate::engine::Providers::resolver)); says so when nothing can ask.
async fn authoritative_servers_serve(
    run: &Arc<Run>,
    id: &str,
    record: &DnsRecordId,
    to: &DnsTarget,
) -> Result<AuthoritativeCheck, StepError> {
    use crate::provider::{PropagationOptions, verify_propagation};
    let Some(resolver) = &run.providers.resolver else {
        return Ok(not_asked("no authoritative resolver: the DNS provider's change status only".to_owned()));
    };
    match resolver.nameservers(record).await {
        Err(e) if e.kind() == ErrorKind::NotSupported => {
            return Ok(not_asked(e.message().to_owned()));
        }
        Err(e) => return Err(e.into()),
        Ok(servers) => run.emit(Event::Waiting {
            step: id.to_owned(),
            what: format!("every authoritative server of {record} ({}) to answer {to}", servers.join(", ")),
        }),
    }
    let options = PropagationOptions {
        poll_interval: run.parts.options.poll_interval,
        straggler_after: Duration::from_secs(10),
        // The step's own timeout bounds the wait; this only keeps the verifier from giving up first.
        deadline: Duration::from_secs(24 * 3600),
        wait_out_ttl: false,
    };
    let report = verify_propagation(resolver.as_ref(), record, to, Duration::ZERO, options).await?;
    Ok(AuthoritativeCheck {
        verified: true,
        why: None,
        servers: report.servers.iter().map(|s| s.server.clone()).collect(),
        all_servers_after_ms: Some(millis_u64(report.all_servers_after)),
    })
}

fn health(health: TargetHealth, note: Option<&str>) -> StepOutput {
    StepOutput::Health(HealthOutput { health, note: note.map(str::to_owned) })
}

fn not_asked(why: String) -> AuthoritativeCheck {
    AuthoritativeCheck { verified: false, why: Some(why), servers: Vec::new(), all_servers_after_ms: None }
}

/// Waits out the old TTL so resolvers have moved clients.
pub(super) async fn drain(run: &Arc<Run>, id: &str, ttl: Duration) -> StepResult {
    run.emit(Event::Waiting { step: id.to_owned(), what: format!("old TTL of {}", humantime::format_duration(ttl)) });
    tokio::time::sleep(ttl).await;
    Ok(StepOutput::Drained)
}
