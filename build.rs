//! Stamps the build with the commit it came from, so `--version`, the start-up line, `/healthz` and
//! `/metrics` say exactly what runs. From a source tarball (no git) the commit is "unknown", or
//! whatever `WEBHOOK_LISTENER_COMMIT` says (packagers set it).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WEBHOOK_LISTENER_COMMIT");
    let commit = std::env::var("WEBHOOK_LISTENER_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_describe)
        .unwrap_or_else(|| "unknown".to_owned());
    // Only characters that are safe in a header, a metric label and a log line.
    let commit: String = commit
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+'))
        .take(64)
        .collect();
    println!("cargo:rustc-env=WEBHOOK_LISTENER_COMMIT={commit}");
}

fn git_describe() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    // Rebuild when HEAD moves (a commit, a checkout), wherever the git directory is (worktrees).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&dir);
        println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or_default();
            let loose = Path::new(&common).join(head_ref);
            // A path that does not exist makes cargo rerun this script on every build; a branch
            // that `git gc` packed lives in packed-refs instead.
            let watched = if loose.exists() {
                loose
            } else {
                Path::new(&common).join("packed-refs")
            };
            println!("cargo:rerun-if-changed={}", watched.display());
        }
    }
    git(&["describe", "--always", "--tags"]).filter(|d| !d.is_empty())
}
