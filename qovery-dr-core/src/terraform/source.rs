//! Where a plan reads Terraform outputs from.

use std::path::PathBuf;

/// One Terraform configuration whose outputs a plan reads (`[terraform.sources.NAME]`).
///
/// ```
/// use qovery_dr_core::terraform::TerraformSource;
/// let s = TerraformSource::new("dr", "/srv/infra/dr").with_workspace("dr").with_binary("tofu");
/// assert_eq!(s.command_line(), "tofu -chdir=/srv/infra/dr output -json (TF_WORKSPACE=dr)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub struct TerraformSource {
    /// Its name in references (`tf:NAME/…`).
    pub name: String,
    /// The CLI: `terraform` (default), `tofu`, or a path to either.
    pub binary: String,
    /// The root module's folder (`-chdir`).
    pub dir: PathBuf,
    /// The workspace (`TF_WORKSPACE`), when not the current one.
    pub workspace: Option<String>,
    /// A local state file (`-state`), when not the configured backend's.
    pub state: Option<PathBuf>,
}

impl TerraformSource {
    /// The configuration in `dir`, read with `terraform`.
    pub fn new(name: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        Self { name: name.into(), binary: "terraform".into(), dir: dir.into(), workspace: None, state: None }
    }

    /// Another CLI (`tofu`, or a path).
    #[must_use]
    pub fn with_binary(mut self, binary: impl Into<String>) -> Self {
        self.binary = binary.into();
        self
    }

    /// A workspace.
    #[must_use]
    pub fn with_workspace(mut self, workspace: impl Into<String>) -> Self {
        self.workspace = Some(workspace.into());
        self
    }

    /// A local state file.
    #[must_use]
    pub fn with_state(mut self, state: impl Into<PathBuf>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// The command that reads the outputs, as an operator would type it.
    pub fn command_line(&self) -> String {
        let mut s = format!("{} -chdir={} output -json", self.binary, self.dir.display());
        if let Some(state) = &self.state {
            s.push_str(&format!(" -state={}", state.display()));
        }
        if let Some(ws) = &self.workspace {
            s.push_str(&format!(" (TF_WORKSPACE={ws})"));
        }
        s
    }
}

/// Outputs that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TerraformError {
    /// The CLI is not there.
    #[error(
        "{binary} cannot be run ({reason}): install Terraform or OpenTofu, or name the CLI with [terraform] binary = \"/path/to/terraform\" (or \"tofu\")"
    )]
    NoBinary {
        /// The binary tried.
        binary: String,
        /// Why it did not start.
        reason: String,
    },
    /// The CLI ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// What ran.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of what it printed on stderr.
        stderr: String,
    },
    /// It did not answer in time.
    #[error("`{command}` did not finish within {seconds} s (a remote state backend that does not answer?)")]
    Timeout {
        /// What ran.
        command: String,
        /// The limit.
        seconds: u64,
    },
    /// It printed something else than outputs.
    #[error("`{command}`: {reason}")]
    Unreadable {
        /// What ran.
        command: String,
        /// Why its output is not outputs.
        reason: String,
    },
    /// This build cannot run the CLI.
    #[error("reading Terraform outputs needs qovery-dr-core's cargo feature `terraform` (on by default)")]
    NotCompiled,
}
