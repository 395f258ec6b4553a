//! Conformance checks for [`ClusterProvider`].

use std::time::Duration;

use qovery_dr_core::provider::{CloneRequest, ClusterProvider, DeploymentPhase, VariableScope, VariableValue};
use qovery_dr_core::{ClusterId, EnvironmentId, ErrorKind, ImageRef, ProjectId, SecretString, ServiceId};

use super::{assert_kind, eventually};

/// What the cluster checks need: a provider and existing objects it may change.
#[derive(Debug, Clone)]
pub struct ClusterFixture<P> {
    /// The implementation under test.
    pub provider: P,
    /// An existing cluster.
    pub cluster: ClusterId,
    /// Another existing cluster (target of clones).
    pub clone_target: ClusterId,
    /// An existing environment on `cluster`, not being deployed.
    pub environment: EnvironmentId,
    /// The project of `environment`.
    pub project: ProjectId,
    /// A container service of `environment`.
    pub service: ServiceId,
    /// An image the service may be pointed at.
    pub image: ImageRef,
    /// How long a deployment may take. Deployments must last longer than one
    /// request (the conflict check deploys twice in a row), as every real platform's do.
    pub deploy_timeout: Duration,
    /// How often to poll.
    pub poll_interval: Duration,
}

const MISSING: &str = "qdr-conformance-does-not-exist";

/// `cluster_status` answers for a known cluster and `NotFound` for an unknown one.
pub async fn cluster_status_known_and_unknown<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let s = f.provider.cluster_status(&f.cluster).await.expect("cluster_status of the fixture's cluster");
    assert_eq!(s.cluster, f.cluster, "cluster_status names the cluster asked for");
    assert_kind(
        f.provider.cluster_status(&ClusterId::new(MISSING)).await,
        ErrorKind::NotFound,
        "cluster_status(unknown)",
    );
}

/// Starting a running cluster is harmless (it stays up); an unknown cluster is
/// `NotFound`; without the `start_cluster` capability, `NotSupported`.
pub async fn starting_a_running_cluster_is_harmless<P: ClusterProvider>(f: &ClusterFixture<P>) {
    if !f.provider.capabilities().start_cluster {
        return assert_kind(f.provider.start_cluster(&f.cluster).await, ErrorKind::NotSupported, "start_cluster");
    }
    let before = f.provider.cluster_status(&f.cluster).await.expect("cluster_status");
    assert!(before.is_healthy(), "the fixture's cluster runs: {before:?}");
    f.provider.start_cluster(&f.cluster).await.expect("start_cluster of a running cluster");
    let after = f.provider.cluster_status(&f.cluster).await.expect("cluster_status");
    assert!(after.is_healthy(), "a running cluster stays up when started again: {after:?}");
    assert_kind(
        f.provider.start_cluster(&ClusterId::new(MISSING)).await,
        ErrorKind::NotFound,
        "start_cluster(unknown)",
    );
}

/// Scaling a service is visible in `list_services` (its `min_instances`), repeating it is
/// harmless, min above max is `InvalidInput` and an unknown service `NotFound`; without
/// the `scale_services` capability, `NotSupported`.
pub async fn scaling_a_service_is_visible_and_idempotent<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let scale = qovery_dr_core::ServiceScale::new(3, 7);
    if !f.provider.capabilities().scale_services {
        return assert_kind(
            f.provider.set_service_scale(&f.environment, &f.service, &scale).await,
            ErrorKind::NotSupported,
            "set_service_scale",
        );
    }
    f.provider.set_service_scale(&f.environment, &f.service, &scale).await.expect("set_service_scale");
    f.provider.set_service_scale(&f.environment, &f.service, &scale).await.expect("set_service_scale, repeated");
    let listed = f.provider.list_services(&f.environment).await.expect("list_services");
    let svc = listed.iter().find(|s| s.id == f.service).expect("the fixture's service is listed");
    assert_eq!(svc.min_instances, 3, "a scaled service lists its new minimum: {svc:?}");
    assert_kind(
        f.provider.set_service_scale(&f.environment, &f.service, &qovery_dr_core::ServiceScale::new(5, 2)).await,
        ErrorKind::InvalidInput,
        "set_service_scale(min above max)",
    );
    assert_kind(
        f.provider.set_service_scale(&f.environment, &ServiceId::new(MISSING), &scale).await,
        ErrorKind::NotFound,
        "set_service_scale(unknown service)",
    );
}

/// `environment_status` names the environment's cluster, and `NotFound` for an unknown one.
pub async fn environment_status_known_and_unknown<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let s = f.provider.environment_status(&f.environment).await.expect("environment_status");
    assert_eq!(s.environment, f.environment);
    assert_eq!(s.cluster, f.cluster, "the environment runs on the fixture's cluster");
    assert_kind(
        f.provider.environment_status(&EnvironmentId::new(MISSING)).await,
        ErrorKind::NotFound,
        "environment_status(unknown)",
    );
    assert_kind(
        f.provider.list_services(&EnvironmentId::new(MISSING)).await,
        ErrorKind::NotFound,
        "list_services(unknown)",
    );
}

/// `list_environments` lists the fixture's environment in its project; an unknown project is `NotFound`.
pub async fn list_environments_of_a_project<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let envs = f.provider.list_environments(&f.project).await.expect("list_environments");
    let env =
        envs.iter().find(|e| e.id == f.environment).unwrap_or_else(|| panic!("{} listed in {envs:?}", f.environment));
    assert_eq!(env.cluster, f.cluster);
    assert!(!env.name.is_empty(), "environments have names");
    assert_kind(
        f.provider.list_environments(&ProjectId::new(MISSING)).await,
        ErrorKind::NotFound,
        "list_environments(unknown)",
    );
}

/// A deployment reaches a terminal phase, `Deployed`, and is visible by id.
pub async fn deploy_reaches_a_terminal_state<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let id = f.provider.deploy_environment(&f.environment).await.expect("deploy_environment");
    let last = eventually(f.deploy_timeout, f.poll_interval, || async {
        let s = f.provider.deployment_status(&f.environment, &id).await.expect("deployment_status");
        s.phase.is_terminal().then_some(s)
    })
    .await;
    let last = last.unwrap_or_else(|| panic!("deployment {id} not terminal within {:?}", f.deploy_timeout));
    assert_eq!(last.phase, DeploymentPhase::Deployed, "deployment ended as {}", last.raw_state);
    assert_eq!(last.deployment, id);
    assert_kind(
        f.provider.deploy_environment(&EnvironmentId::new(MISSING)).await,
        ErrorKind::NotFound,
        "deploy_environment(unknown)",
    );
    assert_kind(
        f.provider.deployment_status(&f.environment, &qovery_dr_core::DeploymentId::new(MISSING)).await,
        ErrorKind::NotFound,
        "deployment_status(unknown)",
    );
}

/// Setting a plain variable twice leaves one variable with the value.
pub async fn variable_upsert_is_idempotent_and_visible<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let scope = VariableScope::Environment(f.environment.clone());
    let key = "QDR_CONFORMANCE_PLAIN";
    let value = VariableValue::Plain("one".to_owned());
    f.provider.set_variable(&scope, key, &value).await.expect("set_variable");
    f.provider.set_variable(&scope, key, &value).await.expect("set_variable again (idempotent)");
    let vars = f.provider.list_variables(&scope).await.expect("list_variables");
    let found: Vec<_> = vars.iter().filter(|v| v.key == key).collect();
    assert_eq!(found.len(), 1, "exactly one {key}: {vars:?}");
    assert_eq!(found[0].value.as_deref(), Some("one"));
    assert!(!found[0].secret);
    f.provider.set_variable(&scope, key, &VariableValue::Plain("two".to_owned())).await.expect("update");
    let vars = f.provider.list_variables(&scope).await.expect("list_variables");
    assert_eq!(vars.iter().find(|v| v.key == key).and_then(|v| v.value.as_deref()), Some("two"), "update visible");
    f.provider.delete_variable(&scope, key).await.expect("clean up");
}

/// Secrets are stored but never listed with their value.
pub async fn secrets_are_never_read_back<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let scope = VariableScope::Environment(f.environment.clone());
    let key = "QDR_CONFORMANCE_SECRET";
    let sentinel = "qdr-conformance-sentinel-7f3a";
    f.provider
        .set_variable(&scope, key, &VariableValue::Secret(SecretString::new(sentinel)))
        .await
        .expect("set secret");
    let vars = f.provider.list_variables(&scope).await.expect("list_variables");
    let v = vars.iter().find(|v| v.key == key).unwrap_or_else(|| panic!("{key} listed: {vars:?}"));
    assert!(v.secret, "listed as secret");
    assert_eq!(v.value, None, "a secret's value is never returned");
    assert!(!format!("{vars:?}").contains(sentinel), "the secret value appears nowhere in the listing");
    f.provider.delete_variable(&scope, key).await.expect("clean up");
}

/// Deleting removes the variable; deleting a missing one is `NotFound`.
pub async fn delete_variable_then_not_found<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let scope = VariableScope::Environment(f.environment.clone());
    let key = "QDR_CONFORMANCE_DELETE";
    f.provider.set_variable(&scope, key, &VariableValue::Plain("x".to_owned())).await.expect("set");
    f.provider.delete_variable(&scope, key).await.expect("delete");
    let vars = f.provider.list_variables(&scope).await.expect("list");
    assert!(vars.iter().all(|v| v.key != key), "deleted variable not listed");
    assert_kind(f.provider.delete_variable(&scope, key).await, ErrorKind::NotFound, "delete_variable(missing)");
    assert_kind(
        f.provider.list_variables(&VariableScope::Environment(EnvironmentId::new(MISSING))).await,
        ErrorKind::NotFound,
        "list_variables(unknown environment)",
    );
}

/// Pointing a service at an image is idempotent and visible in `list_services`.
pub async fn service_image_update_is_visible<P: ClusterProvider>(f: &ClusterFixture<P>) {
    f.provider.set_service_image(&f.environment, &f.service, &f.image).await.expect("set_service_image");
    f.provider.set_service_image(&f.environment, &f.service, &f.image).await.expect("set_service_image again");
    let services = f.provider.list_services(&f.environment).await.expect("list_services");
    let svc = services.iter().find(|s| s.id == f.service).unwrap_or_else(|| panic!("service listed: {services:?}"));
    assert_eq!(svc.image.as_ref(), Some(&f.image));
    assert_kind(
        f.provider.set_service_image(&f.environment, &ServiceId::new(MISSING), &f.image).await,
        ErrorKind::NotFound,
        "set_service_image(unknown service)",
    );
}

/// Cloning creates a new environment on the target cluster (once per name),
/// deletable afterwards; without the capability both answer `NotSupported`.
pub async fn clone_environment_or_not_supported<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let request = CloneRequest::new("qdr-conformance-clone".to_owned(), f.clone_target.clone());
    if !f.provider.capabilities().clone_environment {
        assert_kind(
            f.provider.clone_environment(&f.environment, &request).await,
            ErrorKind::NotSupported,
            "clone without capability",
        );
        assert_kind(
            f.provider.delete_environment(&f.environment).await,
            ErrorKind::NotSupported,
            "delete without capability",
        );
        return;
    }
    let clone = f.provider.clone_environment(&f.environment, &request).await.expect("clone_environment");
    assert_ne!(clone, f.environment);
    let s = f.provider.environment_status(&clone).await.expect("status of the clone");
    assert_eq!(s.cluster, f.clone_target, "the clone is on the target cluster");
    let listed = f.provider.list_environments(&f.project).await.expect("list_environments");
    assert!(listed.iter().any(|e| e.id == clone && e.name == request.name), "the clone is listed by name: {listed:?}");
    assert_kind(
        f.provider.clone_environment(&f.environment, &request).await,
        ErrorKind::AlreadyExists,
        "clone with a taken name",
    );
    f.provider.delete_environment(&clone).await.expect("delete the clone");
    assert_kind(f.provider.environment_status(&clone).await, ErrorKind::NotFound, "status after delete");
    assert_kind(f.provider.delete_environment(&clone).await, ErrorKind::NotFound, "delete twice");
}

/// Deploying chosen services works, or answers `NotSupported` without the capability.
pub async fn deploy_services_or_not_supported<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let services = [f.service.clone()];
    if !f.provider.capabilities().deploy_services {
        assert_kind(
            f.provider
                .deploy_services(&f.environment, &qovery_dr_core::provider::DeployServices::new(services.to_vec()))
                .await,
            ErrorKind::NotSupported,
            "deploy_services without capability",
        );
        return;
    }
    let id = f
        .provider
        .deploy_services(&f.environment, &qovery_dr_core::provider::DeployServices::new(services.to_vec()))
        .await
        .expect("deploy_services");
    let done = eventually(f.deploy_timeout, f.poll_interval, || async {
        let s = f.provider.deployment_status(&f.environment, &id).await.expect("deployment_status");
        s.phase.is_terminal().then_some(s.phase)
    })
    .await;
    assert_eq!(done, Some(DeploymentPhase::Deployed));
    let unknown = [ServiceId::new(MISSING)];
    assert_kind(
        f.provider
            .deploy_services(&f.environment, &qovery_dr_core::provider::DeployServices::new(unknown.to_vec()))
            .await,
        ErrorKind::NotFound,
        "deploy_services(unknown service)",
    );
}

/// Service-scoped variables work, or answer `NotSupported` without the capability.
pub async fn service_scoped_variables_or_not_supported<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let scope = VariableScope::Service(f.environment.clone(), f.service.clone());
    let key = "QDR_CONFORMANCE_SERVICE";
    let value = VariableValue::Plain("svc".to_owned());
    if !f.provider.capabilities().service_scoped_variables {
        assert_kind(
            f.provider.set_variable(&scope, key, &value).await,
            ErrorKind::NotSupported,
            "service scope without capability",
        );
        return;
    }
    f.provider.set_variable(&scope, key, &value).await.expect("set service variable");
    let vars = f.provider.list_variables(&scope).await.expect("list service variables");
    assert_eq!(vars.iter().find(|v| v.key == key).and_then(|v| v.value.as_deref()), Some("svc"));
    f.provider.delete_variable(&scope, key).await.expect("clean up");
}

/// Waits until `deployment` is terminal, checking at every poll that a deployment
/// reported `Deployed` shows in `environment_status` (every service deployed and up to
/// date), and returns the last phase.
async fn wait_terminal_consistent<P: ClusterProvider>(
    f: &ClusterFixture<P>,
    deployment: &qovery_dr_core::DeploymentId,
    what: &str,
) -> DeploymentPhase {
    let phase = eventually(f.deploy_timeout, f.poll_interval, || async {
        let s = f.provider.deployment_status(&f.environment, deployment).await.expect("deployment_status");
        if s.phase == DeploymentPhase::Deployed {
            let env = f.provider.environment_status(&f.environment).await.expect("environment_status");
            let lagging: Vec<String> = env
                .services
                .iter()
                .filter(|svc| svc.phase != DeploymentPhase::Deployed || svc.out_of_date)
                .map(|svc| format!("{} {} (out of date: {})", svc.service, svc.raw_state, svc.out_of_date))
                .collect();
            assert!(
                lagging.is_empty(),
                "{what}: deployment {deployment} says DEPLOYED while environment_status shows {lagging:?}: \
                 deployment_status must not run ahead of the environment"
            );
        }
        s.phase.is_terminal().then_some(s.phase)
    })
    .await;
    phase.unwrap_or_else(|| panic!("{what}: deployment {deployment} not terminal within {:?}", f.deploy_timeout))
}

/// One deployment per environment at a time: a second request while one runs is a
/// `Conflict` (deploy, redeploy, chosen services and stop alike), and nothing else starts.
///
/// Needs deployments that last longer than one request (every real platform's do).
pub async fn a_second_deployment_during_one_is_a_conflict<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let first = f.provider.deploy_environment(&f.environment).await.expect("deploy_environment");
    assert_kind(f.provider.deploy_environment(&f.environment).await, ErrorKind::Conflict, "deploy during a deploy");
    assert_kind(f.provider.redeploy_environment(&f.environment).await, ErrorKind::Conflict, "redeploy during a deploy");
    assert_kind(f.provider.stop_environment(&f.environment).await, ErrorKind::Conflict, "stop during a deploy");
    if f.provider.capabilities().deploy_services {
        assert_kind(
            f.provider
                .deploy_services(
                    &f.environment,
                    &qovery_dr_core::provider::DeployServices::new(vec![f.service.clone()]),
                )
                .await,
            ErrorKind::Conflict,
            "deploy_services during a deploy of the environment",
        );
    }
    let phase = wait_terminal_consistent(f, &first, "the first deployment").await;
    assert_eq!(phase, DeploymentPhase::Deployed);
    // The conflict is environment-wide: deploying one service blocks deploying another.
    let services = f.provider.list_services(&f.environment).await.expect("list_services");
    if let (true, Some(other)) =
        (f.provider.capabilities().deploy_services, services.iter().find(|s| s.id != f.service))
    {
        let one = f
            .provider
            .deploy_services(&f.environment, &qovery_dr_core::provider::DeployServices::new(vec![f.service.clone()]))
            .await
            .expect("deploy one");
        assert_kind(
            f.provider
                .deploy_services(&f.environment, &qovery_dr_core::provider::DeployServices::new(vec![other.id.clone()]))
                .await,
            ErrorKind::Conflict,
            "deploy_services of another service while one service deploys (the environment is busy)",
        );
        wait_terminal_consistent(f, &one, "a one-service deployment").await;
    }
    // Once it ended, the next request is accepted.
    let next = f.provider.deploy_environment(&f.environment).await.expect("deploy once the first ended");
    assert_eq!(wait_terminal_consistent(f, &next, "the next deployment").await, DeploymentPhase::Deployed);
}

/// A deployment reported `Deployed` has rolled out: after pointing the service at a
/// new image (out of date), the deployment's `Deployed` shows in `environment_status`.
pub async fn deployed_means_rolled_out<P: ClusterProvider>(f: &ClusterFixture<P>) {
    f.provider.set_service_image(&f.environment, &f.service, &f.image).await.expect("set_service_image");
    let id = f.provider.deploy_environment(&f.environment).await.expect("deploy_environment");
    let phase = wait_terminal_consistent(f, &id, "a deployment of a changed service").await;
    assert_eq!(phase, DeploymentPhase::Deployed);
    let env = f.provider.environment_status(&f.environment).await.expect("environment_status");
    let svc = env.services.iter().find(|s| s.service == f.service).expect("the fixture's service in the status");
    assert!(!svc.out_of_date && svc.phase == DeploymentPhase::Deployed, "{svc:?}");
}

/// Stopping ends `Stopped` (and stopping a stopped environment is harmless), a redeploy
/// brings it back `Deployed`; unknown environments are `NotFound`; an empty service list
/// is `InvalidInput`.
pub async fn stop_redeploy_and_invalid_input<P: ClusterProvider>(f: &ClusterFixture<P>) {
    let stop = f.provider.stop_environment(&f.environment).await.expect("stop_environment");
    assert_eq!(wait_terminal(f, &stop).await, DeploymentPhase::Stopped, "a stop ends Stopped");
    let again = f.provider.stop_environment(&f.environment).await.expect("stopping a stopped environment is harmless");
    assert_eq!(wait_terminal(f, &again).await, DeploymentPhase::Stopped);
    let redeploy = f.provider.redeploy_environment(&f.environment).await.expect("redeploy_environment");
    assert_eq!(wait_terminal_consistent(f, &redeploy, "a redeploy after a stop").await, DeploymentPhase::Deployed);
    for (what, result) in [
        ("stop_environment(unknown)", f.provider.stop_environment(&EnvironmentId::new(MISSING)).await),
        ("redeploy_environment(unknown)", f.provider.redeploy_environment(&EnvironmentId::new(MISSING)).await),
    ] {
        assert_kind(result, ErrorKind::NotFound, what);
    }
    if f.provider.capabilities().deploy_services {
        assert_kind(
            f.provider
                .deploy_services(&f.environment, &qovery_dr_core::provider::DeployServices::new(Vec::new()))
                .await,
            ErrorKind::InvalidInput,
            "deploy_services([])",
        );
    }
}

async fn wait_terminal<P: ClusterProvider>(
    f: &ClusterFixture<P>,
    id: &qovery_dr_core::DeploymentId,
) -> DeploymentPhase {
    eventually(f.deploy_timeout, f.poll_interval, || async {
        let s = f.provider.deployment_status(&f.environment, id).await.expect("deployment_status");
        s.phase.is_terminal().then_some(s.phase)
    })
    .await
    .unwrap_or_else(|| panic!("deployment {id} not terminal within {:?}", f.deploy_timeout))
}

/// Expands to one `#[tokio::test]` per cluster check, in a module named `$name`.
/// `$setup` is an expression giving a future of a fresh [`ClusterFixture`].
#[macro_export]
macro_rules! cluster_provider_conformance {
    ($name:ident, $setup:expr) => {
        $crate::cluster_provider_conformance!(@inner $name, $setup, #[::tokio::test]);
    };
    ($name:ident, $setup:expr, start_paused) => {
        $crate::cluster_provider_conformance!(@inner $name, $setup, #[::tokio::test(start_paused = true)]);
    };
    (@inner $name:ident, $setup:expr, #[$test:meta]) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_tests!(cluster, $setup, #[$test], [
                cluster_status_known_and_unknown,
                starting_a_running_cluster_is_harmless,
                scaling_a_service_is_visible_and_idempotent,
                environment_status_known_and_unknown,
                list_environments_of_a_project,
                deploy_reaches_a_terminal_state,
                variable_upsert_is_idempotent_and_visible,
                secrets_are_never_read_back,
                delete_variable_then_not_found,
                service_image_update_is_visible,
                clone_environment_or_not_supported,
                deploy_services_or_not_supported,
                service_scoped_variables_or_not_supported,
                a_second_deployment_during_one_is_a_conflict,
                deployed_means_rolled_out,
                stop_redeploy_and_invalid_input,
            ]);
        }
    };
}
