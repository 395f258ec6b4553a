//! Secret values and references to them. Plans hold references; values exist
//! only at run time and never print.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A secret value (token, password). `Debug` prints `[redacted]`; there is no
/// `Display`, so that `format!("{}", token)` cannot silently send `[redacted]` as a
/// credential: the value is used through [`expose`](Self::expose) only.
///
/// ```
/// use qovery_dr_core::SecretString;
/// let s = SecretString::new("hunter2");
/// assert_eq!(format!("{s:?}"), "SecretString([redacted])");
/// assert_eq!(s.expose(), "hunter2");
/// ```
///
/// ```compile_fail
/// let s = qovery_dr_core::SecretString::new("hunter2");
/// let header = format!("Bearer {}", s); // no Display: use s.expose()
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value. Call it only where the value leaves for its destination
    /// (an HTTP header, a connection string), never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// Where a secret is found at run time: `env:NAME` or `file:PATH`.
///
/// Plans accept only references; an inline value is rejected at validation.
///
/// ```
/// use qovery_dr_core::SecretRef;
/// let r: SecretRef = "env:QOVERY_API_TOKEN".parse().unwrap();
/// assert_eq!(r.to_string(), "env:QOVERY_API_TOKEN");
/// assert!("hunter2".parse::<SecretRef>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum SecretRef {
    /// An environment variable of the orchestrating process.
    Env(String),
    /// A file whose content (trailing newline trimmed) is the secret.
    File(PathBuf),
    /// A Terraform output (`tf:SOURCE/OUTPUT` in a plan, usually a `sensitive` one), read
    /// with the CLI when resolved: the value is never held by the plan.
    Terraform(Box<TerraformSecret>),
}

/// A Terraform output used as a secret, and where it is read from.
///
/// Its string form (what serde writes) carries the source:
/// `tf:dr/db_password?dir=%2Fsrv%2Finfra&binary=terraform`; `Display` shows
/// `tf:dr/db_password`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TerraformSecret {
    /// The output (and steps into it).
    pub reference: crate::terraform::OutputRef,
    /// Where it is read from.
    pub source: crate::terraform::TerraformSource,
}

/// A secret reference that cannot be parsed or resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The text is not `env:NAME` or `file:PATH`. The text itself is not repeated,
    /// since it may be the secret.
    #[error(
        "expected a secret reference `env:NAME` or `file:PATH`, got an inline value ({len} characters, not shown); put the value in an environment variable or a file and reference it"
    )]
    NotAReference {
        /// Length of the rejected text.
        len: usize,
    },
    /// `env:` with an invalid variable name.
    #[error("invalid environment variable name {0:?} in secret reference: expected [A-Za-z_][A-Za-z0-9_]*")]
    InvalidEnvName(String),
    /// `file:` with an empty path.
    #[error("empty path in secret reference `file:`")]
    EmptyPath,
    /// The environment variable is not set (or not valid UTF-8).
    #[error("secret reference env:{0} cannot be resolved: the environment variable is not set")]
    EnvNotSet(String),
    /// The file cannot be read.
    #[error("secret reference file:{path} cannot be resolved: {source}")]
    FileUnreadable {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The resolved value is empty.
    #[error("secret reference {0} resolved to an empty value")]
    Empty(String),
    /// A Terraform output could not be read, or is not a string.
    #[error("secret reference {reference} cannot be resolved: {reason}")]
    Terraform {
        /// The reference (`tf:dr/db_password`).
        reference: String,
        /// Why (never the value).
        reason: String,
    },
}

impl SecretRef {
    /// Reads the secret. Files are read on tokio's blocking pool.
    pub async fn resolve(&self) -> Result<SecretString, SecretError> {
        let value = match self {
            SecretRef::Env(name) => std::env::var(name).map_err(|_| SecretError::EnvNotSet(name.clone()))?,
            SecretRef::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|source| SecretError::FileUnreadable { path: path.display().to_string(), source })?;
                text.trim_end_matches(['\n', '\r']).to_owned()
            }
            SecretRef::Terraform(t) => t.resolve().await?,
        };
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(SecretString::new(value))
    }
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(name) = s.strip_prefix("env:") {
            let ok = name
                .bytes()
                .enumerate()
                .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
                && !name.is_empty();
            return if ok {
                Ok(SecretRef::Env(name.to_owned()))
            } else {
                Err(SecretError::InvalidEnvName(name.to_owned()))
            };
        }
        if let Some(path) = s.strip_prefix("file:") {
            return if path.is_empty() {
                Err(SecretError::EmptyPath)
            } else {
                Ok(SecretRef::File(PathBuf::from(path)))
            };
        }
        if s.starts_with("tf:") {
            return TerraformSecret::from_full_form(s).map(|t| SecretRef::Terraform(Box::new(t)));
        }
        Err(SecretError::NotAReference { len: s.chars().count() })
    }
}

impl TerraformSecret {
    async fn resolve(&self) -> Result<String, SecretError> {
        let fail = |reason: String| SecretError::Terraform { reference: self.reference.to_string(), reason };
        #[cfg(feature = "terraform")]
        {
            let outputs = crate::terraform::read_outputs(&self.source).await.map_err(|e| fail(e.to_string()))?;
            match outputs.lookup(&self.reference).map_err(fail)? {
                serde_json::Value::String(s) => Ok(s.clone()),
                v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => Ok(v.to_string()),
                _ => Err(fail("the output is not a string (a list or an object): name one of its parts".into())),
            }
        }
        #[cfg(not(feature = "terraform"))]
        Err(fail(crate::terraform::TerraformError::NotCompiled.to_string()))
    }

    /// The string form with the source (`tf:dr/x?dir=…&binary=…`).
    fn full_form(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("dir", &self.source.dir.to_string_lossy());
        q.append_pair("binary", &self.source.binary);
        if let Some(ws) = &self.source.workspace {
            q.append_pair("workspace", ws);
        }
        if let Some(st) = &self.source.state {
            q.append_pair("state", &st.to_string_lossy());
        }
        format!("{}?{}", self.reference, q.finish())
    }

    fn from_full_form(s: &str) -> Result<Self, SecretError> {
        let invalid = |reason: &str| SecretError::Terraform {
            reference: s.split('?').next().unwrap_or(s).to_owned(),
            reason: reason.to_owned(),
        };
        let (reference, query) = s.split_once('?').ok_or_else(|| {
            invalid("its source is not declared: add [terraform.sources.NAME] with its dir to the plan")
        })?;
        let reference: crate::terraform::OutputRef = reference.parse().map_err(|e: String| invalid(&e))?;
        let mut source = crate::terraform::TerraformSource::new(reference.source.clone(), PathBuf::new());
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "dir" => source.dir = PathBuf::from(v.as_ref()),
                "binary" => source.binary = v.into_owned(),
                "workspace" => source.workspace = Some(v.into_owned()),
                "state" => source.state = Some(PathBuf::from(v.as_ref())),
                _ => return Err(invalid("unknown parameter (expected dir, binary, workspace, state)")),
            }
        }
        if source.dir.as_os_str().is_empty() {
            return Err(invalid("no dir: the source's folder is needed"));
        }
        Ok(Self { reference, source })
    }
}

impl TryFrom<String> for SecretRef {
    type Error = SecretError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<SecretRef> for String {
    fn from(value: SecretRef) -> Self {
        match &value {
            SecretRef::Terraform(t) => t.full_form(),
            _ => value.to_string(),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
            SecretRef::Terraform(t) => write!(f, "{}", t.reference),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_values_are_rejected_without_echoing_them() {
        let e = "s3cr3t-value".parse::<SecretRef>().unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(e.contains("env:NAME"), "{e}");
        assert!(matches!("env:1A".parse::<SecretRef>(), Err(SecretError::InvalidEnvName(_))));
        assert!(matches!("file:".parse::<SecretRef>(), Err(SecretError::EmptyPath)));
    }

    #[test]
    fn a_terraform_reference_carries_its_source_in_its_string_form() {
        let full = "tf:dr/db_password?dir=%2Fsrv%2Finfra+dr&binary=tofu&workspace=dr";
        let r: SecretRef = full.parse().unwrap();
        assert_eq!(r.to_string(), "tf:dr/db_password");
        let SecretRef::Terraform(t) = &r else { panic!("{r:?}") };
        assert_eq!((t.source.dir.to_str(), t.source.binary.as_str()), (Some("/srv/infra dr"), "tofu"));
        assert_eq!(String::from(r.clone()).parse::<SecretRef>().unwrap(), r, "round trip");
        let e = "tf:dr/db_password".parse::<SecretRef>().unwrap_err().to_string();
        assert!(e.contains("[terraform.sources.NAME]"), "{e}");
    }

    #[tokio::test]
    async fn resolves_files_and_reports_missing_ones() {
        let dir = std::env::temp_dir().join(format!("qdr-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "abc\n").unwrap();
        let r = SecretRef::File(f.clone());
        assert_eq!(r.resolve().await.unwrap().expose(), "abc");
        let missing = SecretRef::File(dir.join("nope"));
        let e = missing.resolve().await.unwrap_err().to_string();
        assert!(e.contains("cannot be resolved"), "{e}");
        let e = SecretRef::Env("QDR_SURELY_UNSET_VAR_42".into()).resolve().await.unwrap_err().to_string();
        assert!(e.contains("QDR_SURELY_UNSET_VAR_42 cannot be resolved"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
