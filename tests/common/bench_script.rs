//! Running a `benches/*.sh` harness from a test: the tests that drive real
//! network namespaces (`impaired_network_namespaces.rs`,
//! `simulcast_auto_in_namespaces.rs`) check root and the script's tools the
//! same way (skipping, or failing on CI, through [`super::skip`]), run the
//! script with the built `huddle`, and read the JSON line it prints last.

use std::ffi::OsStr;
use std::process::Command;

/// Whether `test` can run here: root (network namespaces) and every one of
/// `tools` on the `PATH`. Otherwise it is skipped ([`super::skip`]) and the
/// caller returns.
pub fn root_and_tools_or_skip(test: &str, tools: &[&str]) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        super::skip(test, "network namespaces need root");
        return false;
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            super::skip(test, &format!("{tool} is not installed (.ci/setup.sh)"));
            return false;
        }
    }
    true
}

/// Runs `benches/<script>` with `args`, `HUDDLE` set to the built binary and
/// `env` added, and returns the last line of its output that is JSON (the
/// scripts' result line).
///
/// # Panics
/// When the script fails or prints no JSON line (the test fails with its
/// output).
pub fn run(script: &str, args: &[&str], env: &[(&str, &OsStr)]) -> serde_json::Value {
    let path = format!("{}/benches/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new("bash");
    command
        .arg(&path)
        .args(args)
        .env("HUDDLE", env!("CARGO_BIN_EXE_huddle"));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {path}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON result line from {script}: {stdout}"));
    eprintln!("{result}");
    result
}
