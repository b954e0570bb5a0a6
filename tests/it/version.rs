//! Issue 13: what runs is known. `--version`, the start-up line, `/healthz` and `/metrics` all carry
//! the package version and the commit build.rs stamped (`git describe`, "unknown" without git).

use std::process::Command;

use crate::common::*;

/// What build.rs stamps for this checkout: `git describe --always --tags`, or "unknown".
fn expected_commit() -> String {
    Command::new("git")
        .args(["describe", "--always", "--tags"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[test]
fn version_flag_names_version_and_commit() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "webhook-listener {} (commit {})\n",
        env!("CARGO_PKG_VERSION"),
        expected_commit()
    );
    assert_eq!(text, want);
}

#[tokio::test]
async fn startup_line_healthz_and_metrics_carry_the_version() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let (version, commit) = (env!("CARGO_PKG_VERSION"), expected_commit());
    let stderr = server.stderr();
    let serving = stderr
        .lines()
        .find(|l| l.contains("webhook-listener serving"))
        .unwrap();
    assert!(
        serving.contains(&format!("version={version} commit={commit}")),
        "{serving}"
    );
    let h = health(&server).await;
    assert_eq!(h["version"], version, "{h}");
    assert_eq!(h["commit"], commit.as_str(), "{h}");
    let m = metrics(&server).await;
    let want =
        format!("webhook_listener_build_info{{version=\"{version}\",commit=\"{commit}\"}} 1");
    assert!(m.lines().any(|l| l == want), "{want} in:\n{m}");
}
