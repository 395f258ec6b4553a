//! A registry's credentials from the plan: a secret, a Docker `config.json`
//! (with its credential helpers), or nothing.

use std::path::Path;

use qovery_dr_core::SecretString;
use qovery_dr_core::model::Site;
use qovery_dr_core::plan::RegistryAuthPlan;

use super::ConnectError;
use super::secrets::Secrets;
use crate::registry::RegistryAuth;

pub(super) async fn auth(
    site: &Site,
    options: &super::ConnectOptions,
    secrets: &mut Secrets,
) -> Result<RegistryAuth, ConnectError> {
    let _ = options; // used by ECR only
    let prefix = format!("sites.{}.registry", site.role);
    match &site.registry.auth {
        RegistryAuthPlan::Anonymous => Ok(RegistryAuth::Anonymous),
        RegistryAuthPlan::Basic { username, password } => Ok(RegistryAuth::Basic {
            username: username.clone(),
            password: secrets.get(&format!("{prefix}.auth.password"), password).await?,
        }),
        RegistryAuthPlan::BasicPair { credentials } => {
            let path = format!("{prefix}.credentials");
            let pair = secrets.get(&path, credentials).await?;
            match pair.expose().split_once(':') {
                Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                    Ok(RegistryAuth::Basic { username: user.to_owned(), password: SecretString::new(password) })
                }
                _ => Err(ConnectError::SecretShape {
                    path,
                    reference: credentials.to_string(),
                    problem: "is not `user:password` (value not shown); or use auth = { kind = \"basic\", username = …, password = … }".into(),
                }),
            }
        }
        RegistryAuthPlan::Bearer { token } => {
            Ok(RegistryAuth::Bearer { token: secrets.get(&format!("{prefix}.auth.token"), token).await? })
        }
        RegistryAuthPlan::DockerConfig { path } => {
            let file = path.clone().unwrap_or_else(super::default_docker_config);
            docker_config(&file, &site.registry.host, &format!("{prefix}.auth")).await
        }
        #[cfg(feature = "ecr")]
        RegistryAuthPlan::Ecr { region, endpoint_url } => {
            // 123456789012.dkr.ecr.eu-west-3.amazonaws.com names its region.
            let from_host = site.registry.host.split('.').collect::<Vec<_>>();
            let region = region.clone().or_else(|| {
                (from_host.len() >= 6 && from_host[1] == "dkr" && from_host[2] == "ecr")
                    .then(|| from_host[3].to_owned())
            });
            let Some(region) = region else {
                return Err(ConnectError::Missing {
                    path: format!("{prefix}.auth.region"),
                    what: format!(
                        "the ECR region: {} does not name one; add region = \"eu-west-3\"",
                        site.registry.host
                    ),
                });
            };
            let sdk = super::build::aws_config(options, region).await;
            Ok(RegistryAuth::Ecr(crate::registry::EcrCredentials::from_sdk_config(&sdk, endpoint_url.as_deref())))
        }
        #[cfg(not(feature = "ecr"))]
        RegistryAuthPlan::Ecr { .. } => {
            Err(ConnectError::FeatureMissing { path: format!("{prefix}.auth"), provider: "Amazon ECR", feature: "ecr" })
        }
        _ => Err(ConnectError::Missing { path: format!("{prefix}.auth"), what: "unknown auth kind".into() }),
    }
}

#[derive(serde::Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, DockerAuth>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Credentials for `host` from a Docker config: `credHelpers[host]`, then an
/// `auths` entry, then `credsStore`; anonymous when none applies.
async fn docker_config(file: &Path, host: &str, path: &str) -> Result<RegistryAuth, ConnectError> {
    let shape = |problem: String| ConnectError::SecretShape {
        path: path.to_owned(),
        reference: format!("docker config {}", file.display()),
        problem,
    };
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| shape(format!("cannot be read: {e}; give auth.path, or set DOCKER_CONFIG")))?;
    let config: DockerConfig = serde_json::from_str(&text)
        .map_err(|e| shape(format!("is not a Docker config.json (line {}, column {})", e.line(), e.column())))?;
    if let Some(helper) = config.cred_helpers.get(host) {
        return helper_credentials(helper, host, path).await;
    }
    let entry = config.auths.iter().find(|(k, _)| {
        let k = k.trim_start_matches("https://").trim_start_matches("http://");
        k == host || k.split('/').next() == Some(host)
    });
    if let Some((_, a)) = entry {
        if a.identity_token.is_some() {
            return Err(shape(format!(
                "holds an identity token for {host}, which this client does not exchange; use a credential helper or basic credentials"
            )));
        }
        if let (Some(u), Some(p)) = (&a.username, &a.password) {
            return Ok(RegistryAuth::Basic { username: u.clone(), password: SecretString::new(p.clone()) });
        }
        if let Some(encoded) = &a.auth {
            let decoded = data_encoding::BASE64
                .decode(encoded.trim().as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| shape(format!("has an auths[{host}].auth that is not base64 (value not shown)")))?;
            let Some((u, p)) = decoded.split_once(':') else {
                return Err(shape(format!("has an auths[{host}].auth that is not user:password (value not shown)")));
            };
            return Ok(RegistryAuth::Basic { username: u.to_owned(), password: SecretString::new(p) });
        }
    }
    if let Some(store) = &config.creds_store {
        return helper_credentials(store, host, path).await;
    }
    Ok(RegistryAuth::Anonymous)
}

/// Runs `docker-credential-<helper> get` with the host on stdin.
async fn helper_credentials(helper: &str, host: &str, path: &str) -> Result<RegistryAuth, ConnectError> {
    use tokio::io::AsyncWriteExt as _;
    let program = format!("docker-credential-{helper}");
    let fail = |problem: String| ConnectError::SecretShape {
        path: path.to_owned(),
        reference: format!("credential helper {program}"),
        problem,
    };
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot be started: {e}; install it or fix credHelpers")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(host.as_bytes()).await.map_err(|e| fail(format!("did not take the host on stdin: {e}")))?;
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .map_err(|_| fail("did not answer within 30 s".into()))?
        .map_err(|e| fail(format!("failed: {e}")))?;
    if !out.status.success() {
        // Helpers print "credentials not found" and the like; never credentials.
        let msg: String = String::from_utf8_lossy(&out.stderr).chars().take(200).collect();
        return Err(fail(format!("failed for {host} ({}): {}", out.status, msg.trim())));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| fail("answered something that is not {Username, Secret} (not shown)".into()))?;
    if answer.username == "<token>" {
        return Err(fail(format!(
            "gave an identity token for {host}, which this client does not exchange; configure basic credentials for it"
        )));
    }
    Ok(RegistryAuth::Basic { username: answer.username, password: SecretString::new(answer.secret) })
}
