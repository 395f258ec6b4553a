//! Finding (and if need be building) the examples a test runs.

use std::path::PathBuf;
use std::process::Command;

/// The example `name`, built with the features this test binary was built with.
pub fn example(name: &str) -> PathBuf {
    // `cargo test` builds the examples, but `cargo test --test failover_drill` does not:
    // build them once (a no-op when they are fresh) so the test never runs a stale binary.
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        // scripts/test built every example with the workspace's features before running
        // the test executables; building again here, with this package's features alone,
        // would rebuild them (and the providers) with another feature set.
        if std::env::var_os("QDR_EXAMPLES_PREBUILT").is_some() {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let release =
            std::env::current_exe().unwrap().parent().and_then(|d| d.parent()).is_some_and(|d| d.ends_with("release"));
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", "qovery-dr-examples", "--examples"]);
        // Exactly the features this test was built with: under `cargo test --workspace
        // --all-features` the build is then a no-op, never a rebuild of the examples with
        // another feature set (which other test binaries also run).
        let features: Vec<&str> = [
            ("live", cfg!(feature = "live")),
            ("distributed", cfg!(feature = "distributed")),
            ("local-stack", cfg!(feature = "local-stack")),
            ("service", cfg!(feature = "service")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        if !features.is_empty() {
            build.args(["--features", &features.join(",")]);
        }
        if release {
            build.arg("--release");
        }
        let status = build.status().unwrap();
        assert!(status.success(), "building the examples failed");
    });
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join(name);
    assert!(path.exists(), "{} is built by cargo test", path.display());
    path
}
