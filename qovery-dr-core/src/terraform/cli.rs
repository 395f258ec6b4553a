//! Running `terraform output -json`.

use std::process::Stdio;
use std::time::Duration;

use super::{TerraformError, TerraformOutputs, TerraformSource};

/// How long one `terraform output` may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Reads every output of `source` with its CLI (never through a shell; killed when the
/// future is dropped or after 2 minutes). Values are returned, never logged.
pub async fn read_outputs(source: &TerraformSource) -> Result<TerraformOutputs, TerraformError> {
    let command = source.command_line();
    let mut cmd = tokio::process::Command::new(&source.binary);
    cmd.arg(format!("-chdir={}", source.dir.display())).arg("output").arg("-json");
    if let Some(state) = &source.state {
        cmd.arg(format!("-state={}", state.display()));
    }
    if let Some(ws) = &source.workspace {
        cmd.env("TF_WORKSPACE", ws);
    }
    cmd.env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child =
        cmd.spawn().map_err(|e| TerraformError::NoBinary { binary: source.binary.clone(), reason: e.to_string() })?;
    let out = match tokio::time::timeout(TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(TerraformError::Failed { command, status: "not waited for".into(), stderr: e.to_string() });
        }
        Err(_) => return Err(TerraformError::Timeout { command, seconds: TIMEOUT.as_secs() }),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr: String = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        let tail: String = stderr.chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(TerraformError::Failed { command, status: out.status.to_string(), stderr: tail });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    TerraformOutputs::parse(&text).map_err(|reason| TerraformError::Unreadable { command, reason })
}
