//! Errors and warnings of plan loading, each naming the field path.

use std::fmt;

/// One problem in a plan, at a field path like `sites.dr.database.port`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldIssue {
    /// Dotted path to the field (`dns[0].ttl`), or `.` for the whole plan.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl FieldIssue {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A plan that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The file cannot be read.
    #[error("cannot read plan file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension does not say TOML, YAML or JSON.
    #[error("cannot tell the format of plan file {0}: expected an extension .toml, .yaml, .yml or .json")]
    UnknownFormat(String),
    /// The text is not valid TOML/YAML/JSON.
    #[error("plan is not valid {format}: {message}")]
    Syntax {
        /// `TOML`, `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message (with line and column).
        message: String,
    },
    /// The plan parses but breaks one or more rules.
    #[error("plan is invalid ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, render(.0))]
    Invalid(Vec<FieldIssue>),
}

fn render(issues: &[FieldIssue]) -> String {
    issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n")
}

impl PlanError {
    /// The field issues, if the plan is invalid (empty for other errors).
    pub fn issues(&self) -> &[FieldIssue] {
        match self {
            PlanError::Invalid(v) => v,
            _ => &[],
        }
    }
}
