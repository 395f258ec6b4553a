//! The platform: drill clones, DR parameters and images, deployments, verification.

use std::sync::Arc;

use super::super::events::Event;
use super::super::exec::{Run, pause};
use super::super::mode::RunMode;
use super::super::output::{
    CloneOutput, DatabaseConnectionOutput, DeleteCloneOutput, DeployOutput, DrConfigurationOutput, ParametersOutput,
    ServiceImageOutput, ServiceScaleOutput, StartClusterOutput, StepOutput, StopEnvironmentOutput,
    VerifyEnvironmentOutput,
};
use super::super::runbook::EnvRef;
use super::{StepError, StepResult, engine_error, resolve};
use crate::error::ErrorKind;
use crate::model::{EnvironmentId, ImageRef};
use crate::provider::{CloneRequest, DeploymentPhase, VariableScope, VariableValue};

fn clone_name(run: &Run, source: &EnvironmentId) -> String {
    let short: String = run.run_id.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
    let idx = run.plan.primary.environments.iter().position(|e| e == source).unwrap_or(0);
    format!("drill-{short}-{idx}")
}

async fn find_clone(run: &Run, source: &EnvironmentId) -> Result<Option<EnvironmentId>, StepError> {
    let Some(project) = run.plan.dr.project.clone().or_else(|| run.plan.primary.project.clone()) else {
        return Ok(None);
    };
    let name = clone_name(run, source);
    match run.providers.cluster.list_environments(&project).await {
        Ok(envs) => Ok(envs.into_iter().find(|e| e.name == name).map(|e| e.id)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn clone_environment(run: &Arc<Run>, source: &EnvironmentId, reconcile: bool) -> StepResult {
    if reconcile && let Some(existing) = find_clone(run, source).await? {
        return Ok(StepOutput::Clone(CloneOutput { environment: existing, name: clone_name(run, source) }));
    }
    let request = CloneRequest {
        name: clone_name(run, source),
        target_cluster: run.plan.dr.cluster.clone(),
        project: run.plan.dr.project.clone().or_else(|| run.plan.primary.project.clone()),
    };
    match run.providers.cluster.clone_environment(source, &request).await {
        Ok(env) => Ok(StepOutput::Clone(CloneOutput { environment: env, name: request.name })),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match find_clone(run, source).await? {
            Some(env) => Ok(StepOutput::Clone(CloneOutput { environment: env, name: request.name })),
            None => Err(StepError::NotReady(format!(
                "an environment named {} exists but cannot be found to reuse (set the sites' project in the plan)",
                request.name
            ))),
        },
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn delete_clone(run: &Arc<Run>, source: &EnvironmentId) -> StepResult {
    // The id the clone step journaled; else (it never finished) look for the clone by name.
    let created = run.lock_state().clone_of(source).map(|c| c.environment.clone());
    let target = match created {
        Some(e) => Some(e),
        None => find_clone(run, source).await?,
    };
    let Some(env) = target else {
        return Ok(StepOutput::DeleteClone(DeleteCloneOutput { deleted: None, already: false }));
    };
    match run.providers.cluster.delete_environment(&env).await {
        Ok(()) => Ok(StepOutput::DeleteClone(DeleteCloneOutput { deleted: Some(env), already: false })),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Ok(StepOutput::DeleteClone(DeleteCloneOutput { deleted: Some(env), already: true }))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn apply_parameters(run: &Arc<Run>, env: &EnvRef) -> StepResult {
    let env = resolve(run, env)?;
    let scope = VariableScope::Environment(env);
    for (key, value) in &run.plan.dr.parameters {
        run.providers.cluster.set_variable(&scope, key, &VariableValue::Plain(value.clone())).await?;
    }
    let mut variables = run.plan.dr.parameters.len();
    // The run's failover epoch, for applications to compare with the database's.
    if let Some(epoch) = super::epoch::of_run(run) {
        let value = VariableValue::Plain(epoch.epoch.to_string());
        run.providers.cluster.set_variable(&scope, crate::model::EPOCH_VARIABLE, &value).await?;
        variables += 1;
    }
    Ok(StepOutput::Parameters(ParametersOutput { variables }))
}

pub(super) async fn set_scale(
    run: &Arc<Run>,
    env: &EnvRef,
    service: &str,
    scale: &crate::model::ServiceScale,
) -> StepResult {
    let env = resolve(run, env)?;
    let services = run.providers.cluster.list_services(&env).await?;
    let Some(svc) = services.iter().find(|s| s.name == service) else {
        return Err(StepError::NotReady(format!("service {service} is not in environment {env}")));
    };
    run.providers.cluster.set_service_scale(&env, &svc.id, scale).await?;
    Ok(StepOutput::ServiceScale(ServiceScaleOutput { service: svc.id.clone(), scale: *scale }))
}

pub(super) async fn set_image(run: &Arc<Run>, env: &EnvRef, service: &str, image: &ImageRef) -> StepResult {
    let env = resolve(run, env)?;
    let services = run.providers.cluster.list_services(&env).await?;
    let Some(svc) = services.iter().find(|s| s.name == service) else {
        return Err(StepError::NotReady(format!("service {service} is not in environment {env}")));
    };
    if svc.image.as_ref() != Some(image) {
        run.providers.cluster.set_service_image(&env, &svc.id, image).await?;
    }
    Ok(StepOutput::ServiceImage(ServiceImageOutput { service: svc.id.clone(), image: image.clone() }))
}

pub(super) async fn deploy(
    run: &Arc<Run>,
    id: &str,
    env: &EnvironmentId,
    services: Option<&[crate::model::ServiceId]>,
    reconcile: bool,
) -> StepResult {
    let c = &run.providers.cluster;
    if reconcile {
        // A previous attempt may have started (or finished) the deployment: let it end.
        let status = wait_idle(run, id, env, "the deployment a previous attempt may have started").await?;
        if up_to_date(&status, services) {
            return Ok(StepOutput::Deploy(DeployOutput {
                deployment: None,
                reconciled: Some("already deployed".to_owned()),
                waited_for_other_deployments: 0,
            }));
        }
    }
    let mut waited_for_others = 0u32;
    loop {
        let started = match services {
            Some(list) => c.deploy_services(env, &crate::provider::DeployServices::new(list.to_vec())).await,
            None => c.deploy_environment(env).await,
        };
        let deployment = match started {
            Ok(d) => d,
            // Another deployment of the environment runs (someone else's, or ours whose answer
            // was lost): wait for it to end, then deploy only if it did not deploy our configuration.
            Err(e) if e.kind() == ErrorKind::Conflict => {
                waited_for_others += 1;
                let status =
                    wait_idle(run, id, env, &format!("another deployment of {env} to end (the platform said: {e})"))
                        .await?;
                if up_to_date(&status, services) {
                    return Ok(StepOutput::Deploy(DeployOutput {
                        deployment: None,
                        reconciled: Some("deployed by the deployment that was in progress".to_owned()),
                        waited_for_other_deployments: waited_for_others,
                    }));
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        run.emit(Event::Waiting { step: id.to_owned(), what: format!("deployment {deployment} of {env}") });
        wait_deployed(run, id, env, &deployment, services).await?;
        return Ok(StepOutput::Deploy(DeployOutput {
            deployment: Some(deployment),
            reconciled: None,
            waited_for_other_deployments: waited_for_others,
        }));
    }
}

/// Whether every targeted service is deployed and runs its configured version.
fn up_to_date(status: &crate::provider::EnvironmentStatus, services: Option<&[crate::model::ServiceId]>) -> bool {
    let targets: Vec<_> =
        status.services.iter().filter(|s| services.is_none_or(|list| list.contains(&s.service))).collect();
    !targets.is_empty() && targets.iter().all(|s| s.phase == DeploymentPhase::Deployed && !s.out_of_date)
}

/// Polls the environment until no service of it is queued or deploying (a deployment
/// is environment-wide), and returns that status.
async fn wait_idle(
    run: &Arc<Run>,
    id: &str,
    env: &EnvironmentId,
    what: &str,
) -> Result<crate::provider::EnvironmentStatus, StepError> {
    let c = &run.providers.cluster;
    let mut announced = false;
    loop {
        match c.environment_status(env).await {
            Ok(s) if s.services.iter().all(|svc| svc.phase.is_terminal()) => return Ok(s),
            Ok(_) => {
                if !announced {
                    run.emit(Event::Waiting { step: id.to_owned(), what: what.to_owned() });
                    announced = true;
                }
            }
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e.into()),
        }
        pause(run.parts.options.poll_interval).await;
    }
}

/// Waits for `deployment` to end; a deployment reported done is trusted only once the
/// environment shows its services deployed and up to date.
async fn wait_deployed(
    run: &Arc<Run>,
    id: &str,
    env: &EnvironmentId,
    deployment: &crate::model::DeploymentId,
    services: Option<&[crate::model::ServiceId]>,
) -> Result<(), StepError> {
    let c = &run.providers.cluster;
    let poll = run.parts.options.poll_interval;
    let mut announced = false;
    loop {
        let status = match c.deployment_status(env, deployment).await {
            Ok(s) => s,
            Err(e) if e.is_retryable() => {
                pause(poll).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match status.phase {
            // A failed deployment is worth retrying: the retry requests a new one.
            DeploymentPhase::Failed | DeploymentPhase::Canceled => {
                return Err(engine_error(
                    ErrorKind::Transient,
                    id,
                    format!("deployment {deployment} of {env} ended {}", status.raw_state),
                ));
            }
            DeploymentPhase::Deployed => match c.environment_status(env).await {
                Ok(e) if up_to_date(&e, services) => return Ok(()),
                Ok(e) => {
                    if !announced {
                        let lagging: Vec<String> = e
                            .services
                            .iter()
                            .filter(|s| services.is_none_or(|l| l.contains(&s.service)))
                            .filter(|s| s.phase != DeploymentPhase::Deployed || s.out_of_date)
                            .map(|s| format!("{} {}", s.service, s.raw_state))
                            .collect();
                        run.emit(Event::Waiting {
                            step: id.to_owned(),
                            what: format!(
                                "{env}: deployment {deployment} says DEPLOYED but the environment shows {}",
                                lagging.join(", ")
                            ),
                        });
                        announced = true;
                    }
                }
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e.into()),
            },
            _ => {}
        }
        pause(poll).await;
    }
}

/// How an environment's variable stands against the value a parameter should have.
enum ParameterState<'a> {
    Holds,
    /// A secret with another (unreadable) value.
    Secret,
    /// Another value (`unset` when it has none).
    Differs(&'a str),
    Missing,
}

fn parameter_state<'a>(vars: &'a [crate::provider::Variable], key: &str, expected: &str) -> ParameterState<'a> {
    match vars.iter().find(|v| v.key == key) {
        Some(v) if v.value.as_deref() == Some(expected) => ParameterState::Holds,
        Some(v) if v.secret => ParameterState::Secret,
        Some(v) => ParameterState::Differs(v.value.as_deref().unwrap_or("unset")),
        None => ParameterState::Missing,
    }
}

/// A drill clone's database: its variables name the DR database where the plan's DR
/// parameters do (a clone left pointing at production's database would prove nothing, or
/// worse), and the DR database answers through the replication manager.
pub(super) async fn verify_database_connection(run: &Arc<Run>, env: &EnvRef) -> StepResult {
    let id = resolve(run, env)?;
    let dr = &run.plan.dr.database;
    let naming: Vec<(&String, &String)> =
        run.plan.dr.parameters.iter().filter(|(_, v)| v.contains(dr.host.as_str())).collect();
    let vars = run.providers.cluster.list_variables(&VariableScope::Environment(id.clone())).await?;
    let mut wrong = Vec::new();
    for (key, expected) in &naming {
        match parameter_state(&vars, key, expected) {
            ParameterState::Holds | ParameterState::Secret => {}
            ParameterState::Differs(actual) => wrong.push(format!("{key} is {actual}, not {expected}")),
            ParameterState::Missing => wrong.push(format!("{key} is not set (expected {expected})")),
        }
    }
    if !wrong.is_empty() {
        return Err(StepError::NotReady(format!(
            "{env} ({id}) does not point at the DR database {}: {}",
            dr.host,
            wrong.join("; ")
        )));
    }
    let reached = match run.providers.replication.last_heartbeat(&dr.id, crate::provider::Node::Standby).await? {
        Some(h) => format!("the DR database answered: last heartbeat {} written at {}", h.sequence, h.written_at),
        None => "the DR database answered (no heartbeat yet)".to_owned(),
    };
    let skipped = naming.is_empty().then(|| {
        format!(
            "no DR parameter names the DR database host {}: the clone's variables could not be checked against it",
            dr.host
        )
    });
    Ok(StepOutput::DatabaseConnection(DatabaseConnectionOutput {
        parameters: naming.iter().map(|(k, _)| (*k).clone()).collect(),
        reached,
        skipped,
    }))
}

/// The precondition of a DNS-only failover: `env` serves the DR configuration now.
/// Every difference is named; none is repaired (that is what a full failover does).
pub(super) async fn verify_dr_configuration(run: &Arc<Run>, env: &EnvironmentId) -> StepResult {
    let c = &run.providers.cluster;
    let mut wrong = Vec::new();
    let status = c.environment_status(env).await?;
    for s in &status.services {
        if s.phase != DeploymentPhase::Deployed || s.out_of_date {
            wrong.push(format!(
                "service {} is {}{}",
                s.service,
                s.raw_state,
                if s.out_of_date { " (out of date)" } else { "" }
            ));
        }
    }
    if status.services.is_empty() {
        wrong.push("no service is deployed".to_owned());
    }
    let services = c.list_services(env).await?;
    for s in &services {
        let Some(image) = &s.image else { continue };
        if run.plan.registry_mapping.remap(image).is_ok()
            && run.plan.registry_mapping.from != run.plan.registry_mapping.to
        {
            wrong.push(format!("service {} runs {image}, from the primary's registry", s.name));
        }
    }
    let vars = c.list_variables(&VariableScope::Environment(env.clone())).await?;
    for (key, value) in &run.plan.dr.parameters {
        match parameter_state(&vars, key, value) {
            ParameterState::Holds => {}
            ParameterState::Secret => wrong.push(format!("{key} is a secret: its DR value cannot be checked")),
            ParameterState::Differs(actual) => wrong.push(format!("{key} is {actual}, the DR value is {value}")),
            ParameterState::Missing => wrong.push(format!("{key} is not set (the DR value is {value})")),
        }
    }
    if !wrong.is_empty() {
        return Err(StepError::NotReady(format!(
            "{env} does not serve the DR configuration a DNS-only failover relies on: {}; deploy it with the DR \
             configuration first, or run a full failover (without failover.dns_only)",
            wrong.join("; ")
        )));
    }
    Ok(StepOutput::DrConfiguration(DrConfigurationOutput {
        services: services.len(),
        parameters: run.plan.dr.parameters.len(),
    }))
}

/// Starts the DR cluster when it is stopped and waits until it runs (bounded by the
/// step's timeout). A cluster in error is refused: starting will not repair it.
pub(super) async fn start_cluster(run: &Arc<Run>, id: &str, cluster: &crate::model::ClusterId) -> StepResult {
    use crate::provider::ClusterState;
    let c = &run.providers.cluster;
    let first = c.cluster_status(cluster).await?;
    let started = match first.state {
        ClusterState::Running => {
            return Ok(StepOutput::StartCluster(StartClusterOutput { started: false, waited_ms: None }));
        }
        ClusterState::Stopped => {
            c.start_cluster(cluster).await?;
            true
        }
        // Already starting (a previous attempt, or someone else): wait for it.
        ClusterState::Deploying => false,
        other => {
            return Err(StepError::NotReady(format!(
                "DR cluster {cluster} is {other:?}{}: starting it will not repair it",
                first.message.map(|m| format!(" ({m})")).unwrap_or_default()
            )));
        }
    };
    run.emit(Event::Waiting { step: id.to_owned(), what: format!("DR cluster {cluster} to run") });
    let since = run.parts.clock.now();
    loop {
        pause(run.parts.options.poll_interval).await;
        match c.cluster_status(cluster).await {
            Ok(s) if s.is_healthy() => {
                let waited = run.parts.clock.now().saturating_since(since);
                return Ok(StepOutput::StartCluster(StartClusterOutput {
                    started,
                    waited_ms: Some(super::millis_u64(waited)),
                }));
            }
            Ok(s) if matches!(s.state, ClusterState::Deploying | ClusterState::Stopped) => {}
            Ok(s) => {
                return Err(engine_error(
                    ErrorKind::Transient,
                    id,
                    format!("DR cluster {cluster} ended {:?} while starting", s.state),
                ));
            }
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Stops an environment of the old primary site and waits until it is stopped. In a
/// failover the old site may be down: what cannot be done within half the step's
/// budget is reported (the run goes on; the note says to stop it when it answers).
pub(super) async fn stop_old_primary(
    run: &Arc<Run>,
    id: &str,
    env: &EnvironmentId,
    budget: std::time::Duration,
) -> StepResult {
    let attempt = stop_and_wait(run, id, env);
    if run.mode != RunMode::Failover {
        let deployment = attempt.await?;
        return Ok(StepOutput::StopEnvironment(StopEnvironmentOutput { deployment, stopped: true, skipped: None }));
    }
    let why = match tokio::time::timeout(budget / 2, attempt).await {
        Ok(Ok(deployment)) => {
            return Ok(StepOutput::StopEnvironment(StopEnvironmentOutput { deployment, stopped: true, skipped: None }));
        }
        Ok(Err(StepError::Provider(e))) => e.to_string(),
        Ok(Err(other)) => return Err(other),
        Err(_) => format!("no stop within {}", humantime::format_duration(budget / 2)),
    };
    Ok(StepOutput::StopEnvironment(StopEnvironmentOutput {
        deployment: None,
        stopped: false,
        skipped: Some(format!(
            "{env} on the old primary site could not be stopped ({why}); stop it as soon as that site answers, \
             before anything there can write to the old database"
        )),
    }))
}

/// Stops `env` (waiting out a deployment in progress) and waits until it is stopped;
/// `None` when it was stopped already.
async fn stop_and_wait(
    run: &Arc<Run>,
    id: &str,
    env: &EnvironmentId,
) -> Result<Option<crate::model::DeploymentId>, StepError> {
    let c = &run.providers.cluster;
    let status = wait_idle(run, id, env, "a deployment of the old primary environment to end").await?;
    if !status.services.is_empty() && status.services.iter().all(|s| s.phase == DeploymentPhase::Stopped) {
        return Ok(None);
    }
    let deployment = loop {
        match c.stop_environment(env).await {
            Ok(d) => break d,
            Err(e) if e.kind() == ErrorKind::Conflict => {
                wait_idle(run, id, env, &format!("another deployment of {env} to end (the platform said: {e})"))
                    .await?;
            }
            // In a failover the old site may come back any moment: keep asking within the budget.
            Err(e) if e.is_retryable() && run.mode == RunMode::Failover => pause(run.parts.options.poll_interval).await,
            Err(e) => return Err(e.into()),
        }
    };
    run.emit(Event::Waiting { step: id.to_owned(), what: format!("the stop {deployment} of {env}") });
    let poll = run.parts.options.poll_interval;
    loop {
        match c.deployment_status(env, &deployment).await {
            Ok(s) if s.phase == DeploymentPhase::Stopped => return Ok(Some(deployment)),
            Ok(s) if s.phase.is_terminal() => {
                return Err(engine_error(
                    ErrorKind::Transient,
                    id,
                    format!("the stop {deployment} of {env} ended {}", s.raw_state),
                ));
            }
            Ok(_) => {}
            Err(e) if e.is_retryable() => {}
            Err(e) => return Err(e.into()),
        }
        pause(poll).await;
    }
}

pub(super) async fn verify_environment(run: &Arc<Run>, id: &str, env: &EnvRef) -> StepResult {
    let env = resolve(run, env)?;
    let c = &run.providers.cluster;
    loop {
        let status = c.environment_status(&env).await?;
        let cluster = c.cluster_status(&status.cluster).await?;
        let bad: Vec<String> = status
            .services
            .iter()
            .filter(|s| s.phase != DeploymentPhase::Deployed || s.out_of_date)
            .map(|s| format!("{} is {}", s.service, s.raw_state))
            .collect();
        if cluster.is_healthy() && bad.is_empty() {
            return Ok(StepOutput::VerifyEnvironment(VerifyEnvironmentOutput { services: status.services.len() }));
        }
        run.emit(Event::Waiting {
            step: id.to_owned(),
            what: if cluster.is_healthy() {
                bad.join(", ")
            } else {
                format!("cluster {} is {:?}", cluster.cluster, cluster.state)
            },
        });
        pause(run.parts.options.poll_interval).await;
    }
}
