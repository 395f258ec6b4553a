//! `QoveryClusterProvider`: the ClusterProvider over Qovery's REST API.

use qovery_dr_core::resilience::{RetryConfig, TimeoutConfig};
use std::time::Duration;

use qovery_dr_core::provider::{
    CloneRequest, ClusterCapabilities, ClusterProvider, ClusterStatus, DeployServices, DeploymentStatus,
    EnvironmentStatus, EnvironmentSummary, ServiceInfo, ServiceKind, ServiceStatus, Variable, VariableScope,
    VariableValue,
};
use qovery_dr_core::{
    ClusterId, DeploymentId, EnvironmentId, ErrorKind, ImageRef, ProjectId, ProviderError, ProviderResult,
    SecretString, ServiceId, ServiceScale, async_trait,
};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{Http, PROVIDER, QoveryToken, decode, err};
use super::states;

/// The production API.
pub const DEFAULT_API_URL: &str = "https://api.qovery.com";

#[derive(Debug, Deserialize)]
struct Results<T> {
    results: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct ClusterStatusBody {
    status: String,
    #[serde(default)]
    is_deployed: bool,
}

#[derive(Debug, Deserialize)]
struct EnvBody {
    id: String,
    name: String,
    cluster_id: String,
}

#[derive(Debug, Deserialize, Default)]
struct StatusBody {
    #[serde(default)]
    id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    service_deployment_status: Option<String>,
    #[serde(default)]
    deployment_request_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StatusesBody {
    environment: StatusBody,
    #[serde(default)]
    applications: Vec<StatusBody>,
    #[serde(default)]
    containers: Vec<StatusBody>,
}

#[derive(Debug, Deserialize)]
struct RegistryRef {
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ContainerBody {
    id: String,
    name: String,
    #[serde(default)]
    image_name: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    registry: Option<RegistryRef>,
    #[serde(default)]
    min_running_instances: Option<u32>,
}

/// A job (`JobResponse`): its image when it is image-based (`source.image`).
#[derive(Debug, Deserialize)]
struct JobBody {
    id: String,
    name: String,
    #[serde(default)]
    source: Option<JobSourceBody>,
}

#[derive(Debug, Deserialize)]
struct JobSourceBody {
    #[serde(default)]
    image: Option<JobImageBody>,
}

#[derive(Debug, Deserialize)]
struct JobImageBody {
    #[serde(default)]
    image_name: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    registry: Option<RegistryRef>,
}

/// A database of the environment (`Database`): engine and mode only.
#[derive(Debug, Deserialize)]
struct DatabaseBody {
    id: String,
    name: String,
    #[serde(default, rename = "type")]
    engine: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApplicationBody {
    id: String,
    name: String,
    #[serde(default)]
    min_running_instances: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct VariableBody {
    id: String,
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    variable_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeploymentStatusBody {
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RegistryBody {
    id: String,
    #[serde(default)]
    url: Option<String>,
}

/// A [`ClusterProvider`] driving Qovery.
///
/// ```
/// use qovery_dr_providers::qovery::QoveryClusterProvider;
/// let token = qovery_dr_core::SecretString::new("qov_s3cr3t"); // from a secret store, never a literal
/// let p = QoveryClusterProvider::builder("org-1").with_token(token).build().unwrap();
/// assert!(!format!("{p:?}").contains("qov_s3cr3t"));
/// ```
#[derive(Debug, Clone)]
pub struct QoveryClusterProvider {
    http: Http,
    organization: String,
    registry_ids: std::collections::BTreeMap<String, String>,
}

/// Builds a [`QoveryClusterProvider`].
#[derive(Debug)]
pub struct QoveryBuilder {
    organization: String,
    token: Option<QoveryToken>,
    base: String,
    timeouts: TimeoutConfig,
    retry: RetryConfig,
    registry_ids: std::collections::BTreeMap<String, String>,
    limiter: Option<crate::RateLimiter>,
}

impl QoveryBuilder {
    /// A builder for organization `organization`: the public API, no token yet.
    pub fn new(organization: impl Into<String>) -> Self {
        QoveryClusterProvider::builder(organization)
    }

    /// A builder for organization `organization` with the token in `QOVERY_API_TOKEN`
    /// and, when set, the API URL in `QOVERY_API_URL` (`build` says what is missing).
    pub fn from_env(organization: impl Into<String>) -> Self {
        let mut b = Self::new(organization);
        if let Ok(t) = std::env::var("QOVERY_API_TOKEN") {
            b = b.with_token(SecretString::new(t));
        }
        if let Ok(u) = std::env::var("QOVERY_API_URL") {
            b = b.with_endpoint(u);
        }
        b
    }

    /// An API token (or a JWT: recognised by its shape).
    pub fn with_token(mut self, token: SecretString) -> Self {
        self.token = Some(QoveryToken::from_secret(token));
        self
    }

    /// An explicit credential.
    pub fn with_credential(mut self, token: QoveryToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Another API URL (tests, proxies).
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Self {
        self.base = url.into();
        self
    }

    /// Deadlines and the largest answer read (default: 30 s per request, 5 s to connect,
    /// 16 MiB).
    pub fn with_timeouts(mut self, timeouts: TimeoutConfig) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// How requests are retried (default: 4 attempts, the first retry after about
    /// 500 ms): reads on 429, 5xx and connection failures, writes only on 429. An error
    /// retried to exhaustion here is marked, and the engine does not retry it again.
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The Qovery container-registry id serving a registry host (`host[:port]`),
    /// instead of looking it up among the organization's registries.
    pub fn with_registry_id(mut self, host: impl Into<String>, id: impl Into<String>) -> Self {
        self.registry_ids.insert(host.into(), id.into());
        self
    }

    /// The client-side request budget (default: 50 requests per second, bursts of 50; Qovery
    /// publishes no limit, so set yours). Give the same limiter to every provider using one
    /// token so that together they stay under it.
    pub fn with_rate_limiter(mut self, limiter: crate::RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The provider; `InvalidConfig` without a token or with a bad URL.
    pub fn build(self) -> ProviderResult<QoveryClusterProvider> {
        let token = self.token.ok_or_else(|| {
            err(ErrorKind::InvalidConfig, "build", "no Qovery API token: set QOVERY_API_TOKEN or call with_token()")
        })?;
        let base = url::Url::parse(&self.base)
            .map_err(|e| err(ErrorKind::InvalidConfig, "build", format!("invalid API URL {:?}: {e}", self.base)))?;
        let client = reqwest::Client::builder()
            .timeout(self.timeouts.request)
            .connect_timeout(self.timeouts.connect)
            .user_agent(concat!("qovery-dr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| err(ErrorKind::InvalidConfig, "build", format!("HTTP client: {e}")))?;
        Ok(QoveryClusterProvider {
            http: Http {
                base,
                token,
                client,
                retry: self.retry,
                max_body: self.timeouts.max_body_bytes,
                limiter: self.limiter.unwrap_or_else(|| crate::RateLimiter::new(50, Duration::from_secs(1))),
            },
            organization: self.organization,
            registry_ids: self.registry_ids,
        })
    }
}

/// Every API operation this provider calls: (method, path template of the
/// official spec). The contract test checks each against the spec.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/organization/{organizationId}/cluster/{clusterId}/status"),
    ("POST", "/organization/{organizationId}/cluster/{clusterId}/deploy"),
    ("GET", "/organization/{organizationId}/containerRegistry"),
    ("GET", "/project/{projectId}/environment"),
    ("GET", "/environment/{environmentId}"),
    ("DELETE", "/environment/{environmentId}"),
    ("GET", "/environment/{environmentId}/statuses"),
    ("GET", "/environment/{environmentId}/container"),
    ("GET", "/environment/{environmentId}/application"),
    ("GET", "/environment/{environmentId}/job"),
    ("GET", "/environment/{environmentId}/database"),
    ("GET", "/job/{jobId}"),
    ("PUT", "/job/{jobId}"),
    ("POST", "/environment/{environmentId}/deploy"),
    ("POST", "/environment/{environmentId}/redeploy"),
    ("POST", "/environment/{environmentId}/stop"),
    ("POST", "/environment/{environmentId}/service/deploy"),
    ("POST", "/environment/{environmentId}/clone"),
    ("GET", "/environment/deploymentStatus"),
    ("GET", "/container/{containerId}"),
    ("PUT", "/container/{containerId}"),
    ("GET", "/application/{applicationId}"),
    ("PUT", "/application/{applicationId}"),
    ("GET", "/environment/{environmentId}/environmentVariable"),
    ("POST", "/environment/{environmentId}/environmentVariable"),
    ("PUT", "/environment/{environmentId}/environmentVariable/{environmentVariableId}"),
    ("DELETE", "/environment/{environmentId}/environmentVariable/{environmentVariableId}"),
    ("GET", "/environment/{environmentId}/secret"),
    ("POST", "/environment/{environmentId}/secret"),
    ("PUT", "/environment/{environmentId}/secret/{secretId}"),
    ("DELETE", "/environment/{environmentId}/secret/{secretId}"),
    ("GET", "/container/{containerId}/environmentVariable"),
    ("POST", "/container/{containerId}/environmentVariable"),
    ("PUT", "/container/{containerId}/environmentVariable/{environmentVariableId}"),
    ("DELETE", "/container/{containerId}/environmentVariable/{environmentVariableId}"),
    ("GET", "/container/{containerId}/secret"),
    ("POST", "/container/{containerId}/secret"),
    ("PUT", "/container/{containerId}/secret/{secretId}"),
    ("DELETE", "/container/{containerId}/secret/{secretId}"),
    ("GET", "/application/{applicationId}/environmentVariable"),
    ("POST", "/application/{applicationId}/environmentVariable"),
    ("PUT", "/application/{applicationId}/environmentVariable/{environmentVariableId}"),
    ("DELETE", "/application/{applicationId}/environmentVariable/{environmentVariableId}"),
    ("GET", "/application/{applicationId}/secret"),
    ("POST", "/application/{applicationId}/secret"),
    ("PUT", "/application/{applicationId}/secret/{secretId}"),
    ("DELETE", "/application/{applicationId}/secret/{secretId}"),
];

impl QoveryClusterProvider {
    /// Creates (`id` None: POST) or updates (PUT) a variable or secret in a collection.
    async fn write_variable(
        &self,
        op: &str,
        collection: &str,
        id: Option<&str>,
        key: &str,
        value: &str,
    ) -> ProviderResult<()> {
        let body = json!({ "key": key, "value": value });
        match id {
            Some(id) => self.http.send(op, Method::PUT, &format!("{collection}/{id}"), Some(&body)).await.map(|_| ()),
            None => self.http.send(op, Method::POST, collection, Some(&body)).await.map(|_| ()),
        }
    }

    async fn remove_variable(&self, op: &str, collection: &str, id: &str) -> ProviderResult<()> {
        self.http.send(op, Method::DELETE, &format!("{collection}/{id}"), None).await.map(|_| ())
    }

    /// For contract tests only: the exact requests `list_variables`,
    /// `set_variable` and `delete_variable` send to one collection (`level`
    /// is `environment`, `container` or `application`), addressed by id, for
    /// collections whose example data a mock cannot make reachable through
    /// the upsert logic. Feature `contract-tests` only.
    #[cfg(feature = "contract-tests")]
    #[doc(hidden)]
    pub async fn contract_variable_requests(
        &self,
        level: &str,
        owner: &str,
        id: &str,
        key: &str,
        secret: bool,
    ) -> ProviderResult<()> {
        const OP: &str = "contract";
        let collection = format!("/{level}/{owner}/{}", if secret { "secret" } else { "environmentVariable" });
        self.own(OP, &collection, "ANY").await?;
        self.write_variable(OP, &collection, None, key, "v").await?;
        self.write_variable(OP, &collection, Some(id), key, "v").await?;
        self.remove_variable(OP, &collection, id).await
    }

    /// A builder for organization `organization`.
    pub fn builder(organization: impl Into<String>) -> QoveryBuilder {
        QoveryBuilder {
            organization: organization.into(),
            token: None,
            base: DEFAULT_API_URL.to_owned(),
            timeouts: TimeoutConfig {
                request: Duration::from_secs(30),
                connect: Duration::from_secs(5),
                ..TimeoutConfig::default()
            },
            retry: RetryConfig::new(4, Duration::from_millis(500)),
            registry_ids: std::collections::BTreeMap::new(),
            limiter: None,
        }
    }

    /// From the environment: `QOVERY_API_TOKEN` (required), `QOVERY_API_URL` (optional).
    pub fn from_env(organization: impl Into<String>) -> ProviderResult<Self> {
        QoveryBuilder::from_env(organization).build()
    }

    async fn post(&self, op: &str, path: &str, body: &Value) -> ProviderResult<String> {
        Ok(self.http.send(op, Method::POST, path, Some(body)).await?.1)
    }

    /// A POST without a body (the spec declares none for deploy/redeploy/stop).
    async fn post_empty(&self, op: &str, path: &str) -> ProviderResult<String> {
        Ok(self.http.send(op, Method::POST, path, None).await?.1)
    }

    async fn containers(&self, op: &str, env: &EnvironmentId) -> ProviderResult<Vec<ContainerBody>> {
        Ok(self.http.get::<Results<ContainerBody>>(op, &format!("/environment/{env}/container")).await?.results)
    }

    async fn applications(&self, op: &str, env: &EnvironmentId) -> ProviderResult<Vec<ApplicationBody>> {
        Ok(self.http.get::<Results<ApplicationBody>>(op, &format!("/environment/{env}/application")).await?.results)
    }

    async fn jobs(&self, op: &str, env: &EnvironmentId) -> ProviderResult<Vec<JobBody>> {
        Ok(self.http.get::<Results<JobBody>>(op, &format!("/environment/{env}/job")).await?.results)
    }

    async fn databases(&self, op: &str, env: &EnvironmentId) -> ProviderResult<Vec<DatabaseBody>> {
        Ok(self.http.get::<Results<DatabaseBody>>(op, &format!("/environment/{env}/database")).await?.results)
    }

    /// `container`, `application`, `job` or `database`, for a service of an environment.
    async fn service_kind(&self, op: &str, env: &EnvironmentId, service: &ServiceId) -> ProviderResult<&'static str> {
        if self.containers(op, env).await?.iter().any(|c| c.id == service.as_str()) {
            return Ok("container");
        }
        if self.applications(op, env).await?.iter().any(|a| a.id == service.as_str()) {
            return Ok("application");
        }
        if self.jobs(op, env).await?.iter().any(|j| j.id == service.as_str()) {
            return Ok("job");
        }
        if self.databases(op, env).await?.iter().any(|d| d.id == service.as_str()) {
            return Ok("database");
        }
        Err(err(ErrorKind::NotFound, op, format!("service {service} is not in environment {env}")))
    }

    /// Reads a container or application, and writes it back with `scale` (nothing when it
    /// has it already).
    async fn put_scale(&self, op: &str, kind: &str, service: &str, scale: &ServiceScale) -> ProviderResult<()> {
        let path = format!("/{kind}/{service}");
        let current: Value = self.http.get(op, &path).await?;
        let wanted = [
            ("min_running_instances", Some(scale.min_instances)),
            ("max_running_instances", Some(scale.max_instances)),
            ("cpu", scale.cpu_millicores),
            ("memory", scale.memory_mib),
        ];
        let same = wanted
            .iter()
            .all(|(key, v)| v.is_none_or(|v| current.get(*key).and_then(Value::as_u64) == Some(u64::from(v))));
        if same {
            return Ok(());
        }
        let mut body = edit_body(kind, &current);
        if kind == "container" {
            // ContainerRequest requires the image: the one the container has.
            let registry = current.get("registry_id").or_else(|| current.get("registry").and_then(|r| r.get("id")));
            for (key, v) in
                [("registry_id", registry), ("image_name", current.get("image_name")), ("tag", current.get("tag"))]
            {
                if let Some(v) = v.filter(|v| !v.is_null()) {
                    body.insert(key.to_owned(), v.clone());
                }
            }
        }
        for (key, v) in wanted {
            if let Some(v) = v {
                body.insert(key.to_owned(), json!(v));
            }
        }
        self.http.send(op, Method::PUT, &path, Some(&Value::Object(body))).await.map(|_| ())
    }

    /// A scale request for a service of `kind` (`container`, `application`) by id, for the
    /// contract test. Feature `contract-tests` only.
    #[cfg(feature = "contract-tests")]
    #[doc(hidden)]
    pub async fn contract_scale_request(&self, kind: &str, id: &str, scale: &ServiceScale) -> ProviderResult<()> {
        self.put_scale("contract", kind, id, scale).await
    }

    /// Writes job `current` (at `path`) back with `image`, unless it runs it already; a job
    /// built from git has no image to re-point.
    async fn put_job_image(
        &self,
        op: &str,
        path: &str,
        current: &Value,
        registry_id: &str,
        image: &ImageRef,
        tag: &str,
    ) -> ProviderResult<()> {
        let source = current.get("source").and_then(|s| s.get("image"));
        let Some(source) = source.filter(|s| !s.is_null()) else {
            return Err(err(
                ErrorKind::InvalidInput,
                op,
                format!("job {path} is built from git, not a container image"),
            ));
        };
        let same = source.get("registry_id").or_else(|| source.get("registry").and_then(|r| r.get("id")))
            == Some(&json!(registry_id))
            && source.get("image_name").and_then(Value::as_str) == Some(image.repository())
            && source.get("tag").and_then(Value::as_str) == Some(tag);
        if same {
            return Ok(());
        }
        let body = job_edit_body(current, registry_id, image.repository(), tag);
        self.http.send(op, Method::PUT, path, Some(&body)).await.map(|_| ())
    }

    /// The job image request (GET then PUT `/job/{id}`) by id, for the contract test.
    /// Feature `contract-tests` only.
    #[cfg(feature = "contract-tests")]
    #[doc(hidden)]
    pub async fn contract_job_image_request(
        &self,
        job: &str,
        registry_id: &str,
        image: &ImageRef,
    ) -> ProviderResult<()> {
        let path = format!("/job/{job}");
        let current: Value = self.http.get("contract", &path).await?;
        let tag = image.tag().unwrap_or("latest").to_owned();
        self.put_job_image("contract", &path, &current, registry_id, image, &tag).await
    }

    /// The collection paths for a scope: (variables, secrets, Qovery scope name).
    async fn scope_paths(&self, op: &str, scope: &VariableScope) -> ProviderResult<(String, String, &'static str)> {
        Ok(match scope {
            VariableScope::Environment(e) => {
                (format!("/environment/{e}/environmentVariable"), format!("/environment/{e}/secret"), "ENVIRONMENT")
            }
            VariableScope::Service(e, s) => {
                let kind = self.service_kind(op, e, s).await?;
                let scope = match kind {
                    "container" => "CONTAINER",
                    "application" => "APPLICATION",
                    "job" => "JOB",
                    _ => {
                        return Err(err(
                            ErrorKind::NotSupported,
                            op,
                            format!("service {s} is a {kind}: this provider sets no variables on it"),
                        ));
                    }
                };
                (format!("/{kind}/{s}/environmentVariable"), format!("/{kind}/{s}/secret"), scope)
            }
            other => return Err(err(ErrorKind::NotSupported, op, format!("variable scope {other:?}"))),
        })
    }

    async fn own(&self, op: &str, path: &str, scope: &str) -> ProviderResult<Vec<VariableBody>> {
        let all = self.http.get::<Results<VariableBody>>(op, path).await?.results;
        // The listing includes inherited and BUILT_IN variables: keep this scope's own values.
        Ok(all
            .into_iter()
            .filter(|v| {
                v.scope.as_deref() == Some(scope)
                    && v.variable_type.as_deref().is_none_or(|t| t == "VALUE" || t == "FILE")
            })
            .collect())
    }

    async fn registry_id_for(&self, op: &str, image: &ImageRef) -> ProviderResult<String> {
        if let Some(id) = self.registry_ids.get(image.registry()) {
            return Ok(id.clone());
        }
        let regs = self
            .http
            .get::<Results<RegistryBody>>(op, &format!("/organization/{}/containerRegistry", self.organization))
            .await?
            .results;
        let host = image.registry();
        regs.into_iter()
            .find(|r| {
                r.url
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok())
                    .and_then(|u| {
                        u.host_str().map(|h| match u.port() {
                            Some(p) => format!("{h}:{p}"),
                            None => h.to_owned(),
                        })
                    })
                    .is_some_and(|h| h == host)
            })
            .map(|r| r.id)
            .ok_or_else(|| {
                err(
                    ErrorKind::InvalidInput,
                    op,
                    format!(
                        "no container registry of organization {} serves {host}: add it in Qovery first",
                        self.organization
                    ),
                )
            })
    }
}

/// The fields of a service as read (`GET /container/{id}`, `GET /application/{id}`) that its
/// edit request accepts, for a read-modify-write: a PUT replaces the whole service.
fn edit_body(kind: &str, current: &Value) -> serde_json::Map<String, Value> {
    let mut body = serde_json::Map::new();
    let common = [
        "name",
        "description",
        "arguments",
        "entrypoint",
        "cpu",
        "memory",
        "gpu",
        "ephemeral_storage_in_gib",
        "cpu_architecture",
        "min_running_instances",
        "max_running_instances",
        "healthchecks",
        "auto_preview",
        "auto_deploy",
        "ports",
        "storage",
        "icon_uri",
        "autoscaling",
    ];
    let application = ["build_mode", "dockerfile_path", "docker_target_build_stage"];
    let extra: &[&str] = if kind == "application" { &application } else { &[] };
    for key in common.iter().chain(extra) {
        if let Some(v) = current.get(*key).filter(|v| !v.is_null()) {
            body.insert((*key).to_owned(), v.clone());
        }
    }
    for key in ["annotations_groups", "labels_groups"] {
        if let Some(groups) = current.get(key).and_then(Value::as_array) {
            let ids: Vec<Value> =
                groups.iter().filter_map(|g| g.get("id").cloned()).map(|id| json!({ "id": id })).collect();
            body.insert(key.to_owned(), Value::Array(ids));
        }
    }
    if kind == "application"
        && let Some(git) = current.get("git_repository").and_then(Value::as_object)
    {
        // The request's repository is the response's without what Qovery computes.
        let mut request = serde_json::Map::new();
        for key in ["url", "branch", "root_path", "provider", "git_token_id"] {
            if let Some(v) = git.get(key).filter(|v| !v.is_null()) {
                request.insert(key.to_owned(), v.clone());
            }
        }
        body.insert("git_repository".into(), Value::Object(request));
    }
    body.entry("healthchecks").or_insert_with(|| json!({}));
    body
}

fn image_of(c: &ContainerBody) -> Option<ImageRef> {
    image_at(c.registry.as_ref(), c.image_name.as_deref(), c.tag.as_deref())
}

/// An image-based job's image (none for a job built from git).
fn job_image(j: &JobBody) -> Option<ImageRef> {
    let image = j.source.as_ref()?.image.as_ref()?;
    image_at(image.registry.as_ref(), image.image_name.as_deref(), image.tag.as_deref())
}

fn image_at(registry: Option<&RegistryRef>, name: Option<&str>, tag: Option<&str>) -> Option<ImageRef> {
    let host = registry?.url.as_deref().and_then(|u| url::Url::parse(u).ok()).and_then(|u| {
        u.host_str().map(|h| match u.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        })
    })?;
    format!("{host}/{}:{}", name?, tag.unwrap_or("latest")).parse().ok()
}

/// The `JobRequest` that writes job `current` back with `image` (registry id, name, tag):
/// every field the request accepts, from the response, and the new image source.
fn job_edit_body(current: &Value, registry_id: &str, image_name: &str, tag: &str) -> Value {
    let mut body = serde_json::Map::new();
    for key in [
        "name",
        "description",
        "cpu",
        "memory",
        "gpu",
        "ephemeral_storage_in_gib",
        "max_nb_restart",
        "max_duration_seconds",
        "auto_preview",
        "port",
        "cpu_architecture",
        "healthchecks",
        "auto_deploy",
        "icon_uri",
    ] {
        if let Some(v) = current.get(key).filter(|v| !v.is_null()) {
            body.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(mut schedule) = current.get("schedule").and_then(Value::as_object).cloned() {
        // The response's lifecycle_type is computed by Qovery, not part of the request.
        schedule.remove("lifecycle_type");
        body.insert("schedule".into(), Value::Object(schedule));
    }
    for key in ["annotations_groups", "labels_groups"] {
        if let Some(groups) = current.get(key).and_then(Value::as_array) {
            let ids: Vec<Value> =
                groups.iter().filter_map(|g| g.get("id").cloned()).map(|id| json!({ "id": id })).collect();
            body.insert(key.to_owned(), Value::Array(ids));
        }
    }
    body.entry("healthchecks").or_insert_with(|| json!({}));
    body.insert(
        "source".into(),
        json!({ "image": { "image_name": image_name, "tag": tag, "registry_id": registry_id } }),
    );
    Value::Object(body)
}

fn service_status(s: &StatusBody) -> ServiceStatus {
    let out_of_date = s.service_deployment_status.as_deref() == Some("OUT_OF_DATE");
    ServiceStatus::new(ServiceId::new(s.id.clone()), states::phase(&s.state), s.state.clone())
        .with_out_of_date(out_of_date)
}

#[async_trait]
impl ClusterProvider for QoveryClusterProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> ClusterCapabilities {
        ClusterCapabilities::all()
    }

    fn planes(&self) -> qovery_dr_core::stability::Planes {
        qovery_dr_core::stability::catalogue::qovery()
    }

    async fn cluster_status(&self, cluster: &ClusterId) -> ProviderResult<ClusterStatus> {
        const OP: &str = "cluster_status";
        let s: ClusterStatusBody =
            self.http.get(OP, &format!("/organization/{}/cluster/{cluster}/status", self.organization)).await?;
        let state = states::cluster_state(&s.status);
        let message = (!s.is_deployed).then(|| "the cluster is not deployed".to_owned());
        Ok(ClusterStatus::new(cluster.clone(), state).with_message(message))
    }

    async fn environment_status(&self, environment: &EnvironmentId) -> ProviderResult<EnvironmentStatus> {
        const OP: &str = "environment_status";
        let env: EnvBody = self.http.get(OP, &format!("/environment/{environment}")).await?;
        let st: StatusesBody = self.http.get(OP, &format!("/environment/{environment}/statuses")).await?;
        Ok(EnvironmentStatus::new(
            environment.clone(),
            ClusterId::new(env.cluster_id),
            states::phase(&st.environment.state),
            st.environment.state.clone(),
        )
        .with_services(st.containers.iter().chain(st.applications.iter()).map(service_status).collect()))
    }

    async fn list_environments(&self, project: &ProjectId) -> ProviderResult<Vec<EnvironmentSummary>> {
        const OP: &str = "list_environments";
        let envs: Results<EnvBody> = self.http.get(OP, &format!("/project/{project}/environment")).await?;
        Ok(envs
            .results
            .into_iter()
            .map(|e| EnvironmentSummary::new(EnvironmentId::new(e.id), e.name, ClusterId::new(e.cluster_id)))
            .collect())
    }

    async fn list_services(&self, environment: &EnvironmentId) -> ProviderResult<Vec<ServiceInfo>> {
        const OP: &str = "list_services";
        let mut out: Vec<ServiceInfo> = self
            .containers(OP, environment)
            .await?
            .iter()
            .map(|c| {
                ServiceInfo::new(ServiceId::new(c.id.clone()), c.name.clone())
                    .with_image(image_of(c))
                    .with_min_instances(c.min_running_instances.unwrap_or(1))
            })
            .collect();
        out.extend(self.applications(OP, environment).await?.into_iter().map(|a| {
            ServiceInfo::new(ServiceId::new(a.id), a.name)
                .with_min_instances(a.min_running_instances.unwrap_or(1))
                .with_kind(ServiceKind::Application)
        }));
        out.extend(self.jobs(OP, environment).await?.iter().map(|j| {
            ServiceInfo::new(ServiceId::new(j.id.clone()), j.name.clone())
                .with_image(job_image(j))
                .with_min_instances(0)
                .with_kind(ServiceKind::Job)
        }));
        out.extend(self.databases(OP, environment).await?.into_iter().map(|d| {
            let kind = ServiceKind::Database {
                engine: d.engine.unwrap_or_default(),
                managed: d.mode.as_deref() == Some("MANAGED"),
            };
            ServiceInfo::new(ServiceId::new(d.id), d.name).with_kind(kind)
        }));
        Ok(out)
    }

    async fn deploy_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId> {
        const OP: &str = "deploy_environment";
        let text = self.post_empty(OP, &format!("/environment/{environment}/deploy")).await?;
        let s: StatusBody = decode(OP, "deploy", &text)?;
        deployment_id(OP, s)
    }

    async fn redeploy_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId> {
        const OP: &str = "redeploy_environment";
        let text = self.post_empty(OP, &format!("/environment/{environment}/redeploy")).await?;
        deployment_id(OP, decode(OP, "redeploy", &text)?)
    }

    async fn deploy_services(
        &self,
        environment: &EnvironmentId,
        request: &DeployServices,
    ) -> ProviderResult<DeploymentId> {
        let services = request.services.as_slice();
        const OP: &str = "deploy_services";
        if services.is_empty() {
            return Err(err(ErrorKind::InvalidInput, OP, format!("no service given to deploy in {environment}")));
        }
        let containers = self.containers(OP, environment).await?;
        let applications = self.applications(OP, environment).await?;
        let jobs = self.jobs(OP, environment).await?;
        let mut body = json!({ "containers": [], "applications": [], "jobs": [] });
        for s in services {
            if let Some(c) = containers.iter().find(|c| c.id == s.as_str()) {
                let mut item = json!({ "id": c.id });
                if let Some(tag) = &c.tag {
                    item["image_tag"] = json!(tag);
                }
                if let Some(arr) = body["containers"].as_array_mut() {
                    arr.push(item);
                }
            } else if applications.iter().any(|a| a.id == s.as_str()) {
                if let Some(arr) = body["applications"].as_array_mut() {
                    arr.push(json!({ "application_id": s.as_str() }));
                }
            } else if let Some(j) = jobs.iter().find(|j| j.id == s.as_str()) {
                let mut item = json!({ "id": j.id });
                if let Some(tag) = j.source.as_ref().and_then(|src| src.image.as_ref()).and_then(|i| i.tag.as_ref()) {
                    item["image_tag"] = json!(tag);
                }
                if let Some(arr) = body["jobs"].as_array_mut() {
                    arr.push(item);
                }
            } else {
                return Err(err(ErrorKind::NotFound, OP, format!("service {s} is not in environment {environment}")));
            }
        }
        let text = self.post(OP, &format!("/environment/{environment}/service/deploy"), &body).await?;
        deployment_id(OP, decode(OP, "service/deploy", &text)?)
    }

    async fn set_service_scale(
        &self,
        environment: &EnvironmentId,
        service: &ServiceId,
        scale: &ServiceScale,
    ) -> ProviderResult<()> {
        const OP: &str = "set_service_scale";
        if let Some(problem) = scale.problem() {
            return Err(err(ErrorKind::InvalidInput, OP, problem));
        }
        let kind = self.service_kind(OP, environment, service).await?;
        if matches!(kind, "job" | "database") {
            return Err(err(
                ErrorKind::InvalidInput,
                OP,
                format!("service {service} is a {kind}: Qovery holds no instance counts for it"),
            ));
        }
        self.put_scale(OP, kind, service.as_str(), scale).await
    }

    async fn start_cluster(&self, cluster: &ClusterId) -> ProviderResult<()> {
        const OP: &str = "start_cluster";
        // deployCluster: Qovery starts a stopped cluster by deploying it.
        self.post_empty(OP, &format!("/organization/{}/cluster/{cluster}/deploy", self.organization)).await?;
        Ok(())
    }

    async fn stop_environment(&self, environment: &EnvironmentId) -> ProviderResult<DeploymentId> {
        const OP: &str = "stop_environment";
        let text = self.post_empty(OP, &format!("/environment/{environment}/stop")).await?;
        deployment_id(OP, decode(OP, "stop", &text)?)
    }

    async fn deployment_status(
        &self,
        environment: &EnvironmentId,
        deployment: &DeploymentId,
    ) -> ProviderResult<DeploymentStatus> {
        const OP: &str = "deployment_status";
        let path = format!("/environment/deploymentStatus?deploymentRequestId={}", urlencode(deployment.as_str()));
        let s: DeploymentStatusBody = self.http.get(OP, &path).await?;
        let raw = s.status.ok_or_else(|| {
            err(ErrorKind::NotFound, OP, format!("deployment {deployment} of {environment} is unknown"))
        })?;
        Ok(DeploymentStatus::new(deployment.clone(), states::phase(&raw), raw))
    }

    async fn list_variables(&self, scope: &VariableScope) -> ProviderResult<Vec<Variable>> {
        const OP: &str = "list_variables";
        let (vars, secrets, q) = self.scope_paths(OP, scope).await?;
        let mut out: Vec<Variable> =
            self.own(OP, &vars, q).await?.into_iter().map(|v| Variable::new(v.key, v.value, false)).collect();
        // Secret values are never returned by Qovery, nor by us.
        out.extend(self.own(OP, &secrets, q).await?.into_iter().map(|v| Variable::new(v.key, None, true)));
        Ok(out)
    }

    async fn set_variable(&self, scope: &VariableScope, key: &str, value: &VariableValue) -> ProviderResult<()> {
        const OP: &str = "set_variable";
        let (vars, secrets, q) = self.scope_paths(OP, scope).await?;
        let (path, other, text, secret) = match value {
            VariableValue::Plain(v) => (&vars, &secrets, v.as_str(), false),
            VariableValue::Secret(s) => (&secrets, &vars, s.expose(), true),
            other => return Err(err(ErrorKind::NotSupported, OP, format!("variable value {other:?}"))),
        };
        if self.own(OP, other, q).await?.iter().any(|v| v.key == key) {
            return Err(err(
                ErrorKind::Conflict,
                OP,
                format!("{key} exists as a {} variable", if secret { "plain" } else { "secret" }),
            ));
        }
        match self.own(OP, path, q).await?.into_iter().find(|v| v.key == key) {
            // Plain and unchanged: nothing to write (idempotent).
            Some(v) if !secret && v.value.as_deref() == Some(text) => Ok(()),
            Some(v) => self.write_variable(OP, path, Some(&v.id), key, text).await,
            None => self.write_variable(OP, path, None, key, text).await,
        }
    }

    async fn delete_variable(&self, scope: &VariableScope, key: &str) -> ProviderResult<()> {
        const OP: &str = "delete_variable";
        let (vars, secrets, q) = self.scope_paths(OP, scope).await?;
        for path in [&vars, &secrets] {
            if let Some(v) = self.own(OP, path, q).await?.into_iter().find(|v| v.key == key) {
                return self.remove_variable(OP, path, &v.id).await;
            }
        }
        Err(err(ErrorKind::NotFound, OP, format!("variable {key} does not exist")))
    }

    async fn set_service_image(
        &self,
        environment: &EnvironmentId,
        service: &ServiceId,
        image: &ImageRef,
    ) -> ProviderResult<()> {
        const OP: &str = "set_service_image";
        let kind = self.service_kind(OP, environment, service).await?;
        if !matches!(kind, "container" | "job") {
            return Err(err(
                ErrorKind::InvalidInput,
                OP,
                format!(
                    "service {service} is {}, not a container image",
                    match kind {
                        "database" => "a database",
                        _ => "built from git",
                    }
                ),
            ));
        }
        let path = format!("/{kind}/{service}");
        let current: Value = self.http.get(OP, &path).await?;
        let registry_id = self.registry_id_for(OP, image).await?;
        let tag = image
            .tag()
            .map(str::to_owned)
            .or_else(|| image.digest().map(|d| d.to_string()))
            .unwrap_or_else(|| "latest".to_owned());
        if kind == "job" {
            return self.put_job_image(OP, &path, &current, &registry_id, image, &tag).await;
        }
        if current.get("registry_id").and_then(Value::as_str) == Some(&registry_id)
            && current.get("image_name").and_then(Value::as_str) == Some(image.repository())
            && current.get("tag").and_then(Value::as_str) == Some(tag.as_str())
        {
            return Ok(());
        }
        // Read, modify, write back the fields ContainerRequest accepts.
        let mut body = edit_body("container", &current);
        body.insert("registry_id".into(), json!(registry_id));
        body.insert("image_name".into(), json!(image.repository()));
        body.insert("tag".into(), json!(tag));
        self.http.send(OP, Method::PUT, &path, Some(&Value::Object(body))).await.map(|_| ())
    }

    async fn clone_environment(&self, source: &EnvironmentId, request: &CloneRequest) -> ProviderResult<EnvironmentId> {
        const OP: &str = "clone_environment";
        let mut body = json!({ "name": request.name, "cluster_id": request.target_cluster.as_str(), "apply_deployment_rule": false });
        if let Some(p) = &request.project {
            body["project_id"] = json!(p.as_str());
        }
        match self.post(OP, &format!("/environment/{source}/clone"), &body).await {
            Ok(text) => {
                let env: EnvBody = decode(OP, "clone", &text)?;
                Ok(EnvironmentId::new(env.id))
            }
            Err(e) if e.kind() == ErrorKind::Conflict => Err(ProviderError::new(
                ErrorKind::AlreadyExists,
                PROVIDER,
                OP,
                format!("an environment named {} exists: {}", request.name, e.message()),
            )),
            Err(e) => Err(e),
        }
    }

    async fn image_source_ready(&self, image: &ImageRef) -> ProviderResult<()> {
        self.registry_id_for("image_source_ready", image).await.map(|_| ())
    }

    async fn delete_environment(&self, environment: &EnvironmentId) -> ProviderResult<()> {
        const OP: &str = "delete_environment";
        self.http.send(OP, Method::DELETE, &format!("/environment/{environment}"), None).await.map(|_| ())
    }
}

fn deployment_id(op: &str, s: StatusBody) -> ProviderResult<DeploymentId> {
    s.deployment_request_id.filter(|d| !d.is_empty()).map(DeploymentId::new).ok_or_else(|| {
        err(
            ErrorKind::Indeterminate,
            op,
            "the deployment was accepted but its request id is missing: read the environment status",
        )
    })
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Fuzzing entry: every body this provider decodes, from arbitrary bytes, through the
/// same conversions the provider applies.
#[cfg(fuzzing)]
pub(crate) fn fuzz_bodies(bytes: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<Results<ContainerBody>>(bytes) {
        let _: Vec<Option<ImageRef>> = r.results.iter().map(image_of).collect();
    }
    if let Ok(s) = serde_json::from_slice::<StatusBody>(bytes) {
        let _ = service_status(&s);
    }
    let _ = serde_json::from_slice::<StatusesBody>(bytes);
    let _ = serde_json::from_slice::<ClusterStatusBody>(bytes);
    let _ = serde_json::from_slice::<Results<EnvBody>>(bytes);
    let _ = serde_json::from_slice::<Results<ApplicationBody>>(bytes);
    let _ = serde_json::from_slice::<Results<VariableBody>>(bytes);
    let _ = serde_json::from_slice::<DeploymentStatusBody>(bytes);
    let _ = serde_json::from_slice::<Results<RegistryBody>>(bytes);
}
