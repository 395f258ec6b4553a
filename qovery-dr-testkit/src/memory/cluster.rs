//! In-memory [`ClusterProvider`].

use qovery_dr_core::provider::{
    CloneRequest, ClusterCapabilities, ClusterProvider, ClusterStatus, DeployServices, DeploymentPhase,
    DeploymentStatus, EnvironmentStatus, EnvironmentSummary, ServiceInfo, ServiceStatus, Variable, VariableScope,
    VariableValue,
};
use qovery_dr_core::{
    ClusterId, DeploymentId, EnvironmentId, ErrorKind, ImageRef, ProjectId, ProviderError, ProviderResult, ServiceId,
    async_trait,
};

use crate::world::state::{DeploymentKind, DeploymentSim, EnvironmentSim, State, VarSim};
use crate::world::{Ctx, PROVIDER, World, deployment_phase};

/// A [`ClusterProvider`] over a [`World`]: Qovery-like environments whose
/// deployments take simulated time.
#[derive(Debug, Clone)]
pub struct InMemoryCluster {
    world: World,
    capabilities: ClusterCapabilities,
}

impl InMemoryCluster {
    /// A provider with every capability.
    pub fn new(world: &World) -> Self {
        Self { world: world.clone(), capabilities: ClusterCapabilities::all() }
    }

    /// The same provider declaring other capabilities (unsupported calls answer `NotSupported`).
    pub fn with_capabilities(mut self, capabilities: ClusterCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    fn unsupported(&self, op: &str, what: &str) -> ProviderError {
        ProviderError::new(
            ErrorKind::NotSupported,
            PROVIDER,
            op,
            format!("{what} is disabled in this provider's capabilities"),
        )
    }
}

fn err(kind: ErrorKind, op: &str, msg: String) -> ProviderError {
    ProviderError::new(kind, PROVIDER, op, msg)
}

fn env_mut<'a>(s: &'a mut State, id: &EnvironmentId, op: &str) -> ProviderResult<&'a mut EnvironmentSim> {
    s.environments.get_mut(id).ok_or_else(|| err(ErrorKind::NotFound, op, format!("environment {id} does not exist")))
}

fn start_deployment(
    s: &mut State,
    ctx: &Ctx<'_>,
    env_id: &EnvironmentId,
    services: Option<&[ServiceId]>,
    kind: DeploymentKind,
    op: &str,
) -> ProviderResult<DeploymentId> {
    let now = ctx.now;
    let config = ctx.config();
    let env = env_mut(s, env_id, op)?;
    let selected: Vec<ServiceId> = match services {
        Some([]) => {
            return Err(err(ErrorKind::InvalidInput, op, format!("no service given to deploy in {env_id}")));
        }
        Some(list) => {
            if let Some(missing) = list.iter().find(|id| !env.services.contains_key(*id)) {
                return Err(err(ErrorKind::NotFound, op, format!("service {missing} is not in environment {env_id}")));
            }
            list.to_vec()
        }
        None => env.services.keys().cloned().collect(),
    };
    // Like Qovery, one deployment at a time per environment: a request while any
    // deployment of the environment is unfinished is a 409, whichever services it covers.
    let busy = s.deployments.values().any(|d| &d.environment == env_id && !d.phase(now).0.is_terminal());
    if busy {
        return Err(err(ErrorKind::Conflict, op, format!("a deployment of environment {env_id} is in progress")));
    }
    s.next_id += 1;
    let id = DeploymentId::new(format!("deployment-{}", s.next_id));
    let env = env_mut(s, env_id, op)?;
    for svc in &selected {
        if let Some(svc) = env.services.get_mut(svc) {
            svc.last_deployment = Some(id.clone());
        }
    }
    let configs =
        selected.iter().filter_map(|id| env.services.get(id).map(|svc| (id.clone(), svc.desired.clone()))).collect();
    let env_vars = env.variables.clone();
    let fails = env.fail_next_deployments > 0;
    env.fail_next_deployments = env.fail_next_deployments.saturating_sub(1);
    env.last_deployment = Some(id.clone());
    let duration = match kind {
        DeploymentKind::Deploy => config.deploy_duration,
        DeploymentKind::Stop => config.stop_duration,
    };
    let starts_at = now + config.queue_delay;
    s.deployments.insert(
        id.clone(),
        DeploymentSim {
            environment: env_id.clone(),
            kind,
            services: selected,
            requested_at: now,
            starts_at,
            ends_at: starts_at + duration,
            fails,
            settled: false,
            configs,
            env_vars,
        },
    );
    Ok(id)
}

fn vars_of<'a>(
    s: &'a mut State,
    scope: &VariableScope,
    op: &str,
) -> ProviderResult<&'a mut std::collections::BTreeMap<String, VarSim>> {
    match scope {
        VariableScope::Environment(e) => Ok(&mut env_mut(s, e, op)?.variables),
        VariableScope::Service(e, svc) => {
            let env = env_mut(s, e, op)?;
            env.services
                .get_mut(svc)
                .map(|s| &mut s.desired.variables)
                .ok_or_else(|| err(ErrorKind::NotFound, op, format!("service {svc} is not in environment {e}")))
        }
        other => Err(err(ErrorKind::NotSupported, op, format!("variable scope {other:?}"))),
    }
}

#[async_trait]
impl ClusterProvider for InMemoryCluster {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> ClusterCapabilities {
        self.capabilities
    }

    async fn cluster_status(&self, cluster: &ClusterId) -> ProviderResult<ClusterStatus> {
        const OP: &str = "cluster.cluster_status";
        self.world
            .call(OP, false, cluster.to_string(), |s, ctx| {
                if s.cluster_starts.get(cluster).is_some_and(|start| ctx.now >= start.ready_at) {
                    s.cluster_starts.remove(cluster);
                    s.clusters.insert(cluster.clone(), qovery_dr_core::provider::ClusterState::Running);
                }
                let state = s
                    .clusters
                    .get(cluster)
                    .cloned()
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("cluster {cluster} does not exist")))?;
                Ok(ClusterStatus::new(cluster.clone(), state))
            })
            .await
    }

    async fn start_cluster(&self, cluster: &ClusterId) -> ProviderResult<()> {
        const OP: &str = "cluster.start_cluster";
        if !self.capabilities.start_cluster {
            return Err(err(
                ErrorKind::NotSupported,
                OP,
                "start_cluster is disabled in this provider's capabilities".into(),
            ));
        }
        self.world
            .call(OP, true, cluster.to_string(), |s, ctx| {
                match s.clusters.get(cluster) {
                    None => Err(err(ErrorKind::NotFound, OP, format!("cluster {cluster} does not exist"))),
                    Some(qovery_dr_core::provider::ClusterState::Stopped) => {
                        // Starting a cluster takes as long as a deployment (the world's deploy duration).
                        let ready_at = ctx.now + ctx.config().deploy_duration;
                        s.clusters.insert(cluster.clone(), qovery_dr_core::provider::ClusterState::Deploying);
                        s.cluster_starts.insert(cluster.clone(), crate::world::state::ClusterStart { ready_at });
                        Ok(())
                    }
                    Some(qovery_dr_core::provider::ClusterState::Error) => Err(err(
                        ErrorKind::Conflict,
                        OP,
                        format!("cluster {cluster} is in error: repair it before starting it"),
                    )),
                    Some(_) => {
                        ctx.no_change();
                        Ok(())
                    }
                }
            })
            .await
    }

    async fn environment_status(&self, environment: &EnvironmentId) -> ProviderResult<EnvironmentStatus> {
        const OP: &str = "cluster.environment_status";
        self.world
            .call(OP, false, environment.to_string(), |s, ctx| {
                let env = s
                    .environments
                    .get(environment)
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("environment {environment} does not exist")))?;
                let (phase, raw) = match env.last_deployment.as_ref().and_then(|d| deployment_phase(s, d, ctx.now)) {
                    Some(p) => p,
                    None if env.running => (DeploymentPhase::Deployed, "DEPLOYED"),
                    None => (DeploymentPhase::Unknown, "READY"),
                };
                let services = env
                    .services
                    .iter()
                    .map(|(id, svc)| {
                        let (phase, raw) =
                            match svc.last_deployment.as_ref().and_then(|d| deployment_phase(s, d, ctx.now)) {
                                Some(p) => p,
                                None if svc.running.is_some() => (DeploymentPhase::Deployed, "DEPLOYED"),
                                None => (DeploymentPhase::Unknown, "READY"),
                            };
                        // A database does not take the environment's variables: a new one
                        // leaves it up to date (as on Qovery).
                        let takes_variables =
                            !matches!(svc.kind, qovery_dr_core::provider::ServiceKind::Database { .. });
                        let out_of_date = svc.running.as_ref().is_some_and(|r| {
                            r != &svc.desired || (takes_variables && svc.running_env_vars != env.variables)
                        });
                        let raw = if out_of_date && phase == DeploymentPhase::Deployed { "OUT_OF_DATE" } else { raw };
                        ServiceStatus::new(id.clone(), phase, raw.to_owned()).with_out_of_date(out_of_date)
                    })
                    .collect();
                Ok(EnvironmentStatus::new(environment.clone(), env.cluster.clone(), phase, raw.to_owned())
                    .with_services(services))
            })
            .await
    }

    async fn list_environments(&self, project: &ProjectId) -> ProviderResult<Vec<EnvironmentSummary>> {
        const OP: &str = "cluster.list_environments";
        self.world
            .call(OP, false, project.to_string(), |s, _| {
                let envs: Vec<EnvironmentSummary> = s
                    .environments
                    .iter()
                    .filter(|(_, e)| &e.project == project)
                    .map(|(id, e)| EnvironmentSummary::new(id.clone(), e.name.clone(), e.cluster.clone()))
                    .collect();
                if envs.is_empty() {
                    return Err(err(ErrorKind::NotFound, OP, format!("project {project} does not exist")));
                }
                Ok(envs)
            })
            .await
    }

    async fn list_services(&self, environment: &EnvironmentId) -> ProviderResult<Vec<ServiceInfo>> {
        const OP: &str = "cluster.list_services";
        self.world
            .call(OP, false, environment.to_string(), |s, _| {
                let env = s
                    .environments
                    .get(environment)
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("environment {environment} does not exist")))?;
                Ok(env
                    .services
                    .iter()
                    .map(|(id, svc)| {
                        ServiceInfo::new(id.clone(), svc.name.clone())
                            .with_image(svc.desired.image.clone())
                            .with_min_instances(svc.desired.min_instances)
                            .with_kind(svc.kind.clone())
                    })
                    .collect())
            })
            .await
    }

    async fn deploy_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId> {
        const OP: &str = "cluster.deploy_environment";
        self.world
            .call(OP, true, environment.to_string(), |s, ctx| {
                start_deployment(s, ctx, environment, None, DeploymentKind::Deploy, OP)
            })
            .await
    }

    async fn redeploy_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId> {
        const OP: &str = "cluster.redeploy_environment";
        self.world
            .call(OP, true, environment.to_string(), |s, ctx| {
                start_deployment(s, ctx, environment, None, DeploymentKind::Deploy, OP)
            })
            .await
    }

    async fn deploy_services(
        &self,
        environment: &EnvironmentId,
        request: &DeployServices,
    ) -> ProviderResult<DeploymentId> {
        let services = request.services.as_slice();
        const OP: &str = "cluster.deploy_services";
        if !self.capabilities.deploy_services {
            return Err(self.unsupported(OP, "deploying a subset of services"));
        }
        let detail = format!("{environment} {:?}", services.iter().map(ServiceId::as_str).collect::<Vec<_>>());
        self.world
            .call(OP, true, detail, |s, ctx| {
                start_deployment(s, ctx, environment, Some(services), DeploymentKind::Deploy, OP)
            })
            .await
    }

    async fn stop_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId> {
        const OP: &str = "cluster.stop_environment";
        self.world
            .call(OP, true, environment.to_string(), |s, ctx| {
                start_deployment(s, ctx, environment, None, DeploymentKind::Stop, OP)
            })
            .await
    }

    async fn deployment_status(
        &self,
        environment: &EnvironmentId,
        deployment: &DeploymentId,
    ) -> ProviderResult<DeploymentStatus> {
        const OP: &str = "cluster.deployment_status";
        self.world
            .call(OP, false, format!("{environment} {deployment}"), |s, ctx| {
                let d = s.deployments.get(deployment).filter(|d| &d.environment == environment).ok_or_else(|| {
                    err(
                        ErrorKind::NotFound,
                        OP,
                        format!("deployment {deployment} of environment {environment} does not exist"),
                    )
                })?;
                let (phase, raw) = d.phase(ctx.now);
                let message = (phase == DeploymentPhase::Failed).then(|| "simulated deployment failure".to_owned());
                Ok(DeploymentStatus::new(deployment.clone(), phase, raw.to_owned()).with_message(message))
            })
            .await
    }

    async fn list_variables(&self, scope: &VariableScope) -> ProviderResult<Vec<Variable>> {
        const OP: &str = "cluster.list_variables";
        if matches!(scope, VariableScope::Service(..)) && !self.capabilities.service_scoped_variables {
            return Err(self.unsupported(OP, "service-scoped variables"));
        }
        self.world
            .call(OP, false, format!("{scope:?}"), |s, _| {
                Ok(vars_of(s, scope, OP)?
                    .iter()
                    .map(|(k, v)| Variable::new(k.clone(), (!v.secret).then(|| v.value.clone()), v.secret))
                    .collect())
            })
            .await
    }

    async fn set_variable(&self, scope: &VariableScope, key: &str, value: &VariableValue) -> ProviderResult<()> {
        const OP: &str = "cluster.set_variable";
        if matches!(scope, VariableScope::Service(..)) && !self.capabilities.service_scoped_variables {
            return Err(self.unsupported(OP, "service-scoped variables"));
        }
        let (value, secret) = match value {
            VariableValue::Plain(v) => (v.clone(), false),
            // The world keeps a fingerprint, not the value: secrets are write-only, and the
            // world is saved to disk (the main example's snapshot), where a secret must not be.
            VariableValue::Secret(v) => (secret_fingerprint(v.expose()), true),
            other => return Err(err(ErrorKind::NotSupported, OP, format!("variable value {other:?}"))),
        };
        // The detail never carries a secret's value.
        let detail = if secret { format!("{scope:?} {key}=[redacted]") } else { format!("{scope:?} {key}={value}") };
        self.world
            .call(OP, true, detail, |s, _| {
                let vars = vars_of(s, scope, OP)?;
                if let Some(existing) = vars.get(key)
                    && existing.secret != secret
                {
                    return Err(err(
                        ErrorKind::Conflict,
                        OP,
                        format!(
                            "variable {key} exists as a {} variable",
                            if existing.secret { "secret" } else { "plain" }
                        ),
                    ));
                }
                vars.insert(key.to_owned(), VarSim { value, secret });
                Ok(())
            })
            .await
    }

    async fn delete_variable(&self, scope: &VariableScope, key: &str) -> ProviderResult<()> {
        const OP: &str = "cluster.delete_variable";
        self.world
            .call(OP, true, format!("{scope:?} {key}"), |s, _| {
                vars_of(s, scope, OP)?
                    .remove(key)
                    .map(|_| ())
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("variable {key} does not exist")))
            })
            .await
    }

    async fn set_service_image(
        &self,
        environment: &EnvironmentId,
        service: &ServiceId,
        image: &ImageRef,
    ) -> ProviderResult<()> {
        const OP: &str = "cluster.set_service_image";
        self.world
            .call(OP, true, format!("{environment} {service} {image}"), |s, _| {
                let env = env_mut(s, environment, OP)?;
                let svc = env.services.get_mut(service).ok_or_else(|| {
                    err(ErrorKind::NotFound, OP, format!("service {service} is not in environment {environment}"))
                })?;
                if svc.desired.image.is_none() {
                    return Err(err(
                        ErrorKind::InvalidInput,
                        OP,
                        format!("service {service} does not run a container image"),
                    ));
                }
                svc.desired.image = Some(image.clone());
                Ok(())
            })
            .await
    }

    async fn set_service_scale(
        &self,
        environment: &EnvironmentId,
        service: &ServiceId,
        scale: &qovery_dr_core::ServiceScale,
    ) -> ProviderResult<()> {
        const OP: &str = "cluster.set_service_scale";
        if !self.capabilities.scale_services {
            return Err(self.unsupported(OP, "scaling services"));
        }
        if let Some(problem) = scale.problem() {
            return Err(err(ErrorKind::InvalidInput, OP, problem));
        }
        self.world
            .call(OP, true, format!("{environment} {service} {scale:?}"), |s, ctx| {
                let env = env_mut(s, environment, OP)?;
                let svc = env.services.get_mut(service).ok_or_else(|| {
                    err(ErrorKind::NotFound, OP, format!("service {service} is not in environment {environment}"))
                })?;
                if !svc.kind.scales() {
                    return Err(err(
                        ErrorKind::InvalidInput,
                        OP,
                        format!("service {service} is a {:?}: it has no instance counts to scale", svc.kind),
                    ));
                }
                if svc.desired.scale.as_ref() == Some(scale) && svc.desired.min_instances == scale.min_instances {
                    ctx.no_change();
                }
                svc.desired.min_instances = scale.min_instances;
                svc.desired.scale = Some(*scale);
                Ok(())
            })
            .await
    }

    async fn clone_environment(&self, source: &EnvironmentId, request: &CloneRequest) -> ProviderResult<EnvironmentId> {
        const OP: &str = "cluster.clone_environment";
        if !self.capabilities.clone_environment {
            return Err(self.unsupported(OP, "cloning environments"));
        }
        self.world
            .call(OP, true, format!("{source} -> {} on {}", request.name, request.target_cluster), |s, _| {
                if !s.clusters.contains_key(&request.target_cluster) {
                    return Err(err(
                        ErrorKind::NotFound,
                        OP,
                        format!("cluster {} does not exist", request.target_cluster),
                    ));
                }
                let src = s
                    .environments
                    .get(source)
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("environment {source} does not exist")))?;
                let project = request.project.clone().unwrap_or_else(|| src.project.clone());
                if s.environments.values().any(|e| e.project == project && e.name == request.name) {
                    return Err(err(
                        ErrorKind::AlreadyExists,
                        OP,
                        format!("an environment named {} exists in project {project}", request.name),
                    ));
                }
                let mut copy = src.clone();
                copy.name = request.name.clone();
                copy.cluster = request.target_cluster.clone();
                copy.project = project;
                copy.running = false;
                copy.last_deployment = None;
                copy.fail_next_deployments = 0;
                let mut services = std::collections::BTreeMap::new();
                for (id, mut svc) in std::mem::take(&mut copy.services) {
                    svc.running = None;
                    svc.last_deployment = None;
                    services.insert(ServiceId::new(format!("{}-{id}", request.name)), svc);
                }
                copy.services = services;
                s.next_id += 1;
                let id = EnvironmentId::new(format!("clone-{}-{}", s.next_id, request.name));
                s.environments.insert(id.clone(), copy);
                Ok(id)
            })
            .await
    }

    async fn delete_environment(&self, environment: &EnvironmentId) -> ProviderResult<()> {
        const OP: &str = "cluster.delete_environment";
        if !self.capabilities.clone_environment {
            return Err(self.unsupported(OP, "deleting environments"));
        }
        self.world
            .call(OP, true, environment.to_string(), |s, _| {
                s.environments
                    .remove(environment)
                    .map(|_| ())
                    .ok_or_else(|| err(ErrorKind::NotFound, OP, format!("environment {environment} does not exist")))
            })
            .await
    }
}

/// What the simulated world stores for a secret value: equal values give equal
/// fingerprints (so a repeated write is recognised), the value itself is not kept.
fn secret_fingerprint(value: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    format!("[secret, fingerprint {:016x}]", h.finish())
}
