//! Issue #13, `check-config`: the log directory is checked, every error is reported in one run,
//! `--syntax-only` checks a file without the machine's secrets (for CI), and the summary lists what
//! an operator needs to see. The real binary, bounded runs.

use std::path::Path;
use std::process::Command;

use crate::config_errors::{cli, cli_env, CliOut};
use std::time::Duration;

fn write_config(dir: &Path, log_file: &Path, rest: &str) -> std::path::PathBuf {
    let file = dir.join("config.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\n[log]\nfile = {:?}\n{rest}",
        log_file.display().to_string()
    );
    std::fs::write(&file, text).unwrap();
    file
}

const ONE_HOOK: &str =
    "[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\nsecrets = [\"a-literal-secret-long-enough\"]\n";

fn check(file: &Path) -> CliOut {
    cli(&["check-config", file.to_str().unwrap()])
}

#[test]
fn a_missing_log_directory_or_one_that_is_a_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ok = write_config(dir.path(), &dir.path().join("events.log"), ONE_HOOK);
    let out = check(&ok);
    assert!(out.ok(), "writable directory: {}", out.all());

    let missing = dir.path().join("no-such-dir");
    let file = write_config(dir.path(), &missing.join("events.log"), ONE_HOOK);
    let out = check(&file);
    assert!(out.failed(), "missing directory accepted: {}", out.all());
    assert!(
        out.stderr.contains(&missing.display().to_string()) && out.stderr.contains("log.file"),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("does not exist"), "{}", out.all());

    let plain = dir.path().join("plain-file");
    std::fs::write(&plain, "").unwrap();
    let file = write_config(dir.path(), &plain.join("events.log"), ONE_HOOK);
    let out = check(&file);
    assert!(out.failed(), "a file as directory accepted: {}", out.all());
    assert!(
        out.stderr.contains(&plain.display().to_string()) && out.stderr.contains("not a directory"),
        "{}",
        out.all()
    );

    // The log path itself is something else than a regular file: the server would refuse it.
    let sub = dir.path().join("a-directory.log");
    std::fs::create_dir(&sub).unwrap();
    let file = write_config(dir.path(), &sub, ONE_HOOK);
    let out = check(&file);
    assert!(
        out.failed(),
        "a directory as the log accepted: {}",
        out.all()
    );
    assert!(
        out.stderr.contains(&sub.display().to_string()),
        "{}",
        out.all()
    );
}

/// An unwritable directory. Root writes through permission bits, so as root the directory is made
/// read-only with a read-only bind mount in a private mount namespace (`unshare -m`, gone with the
/// process); where that is impossible the sub-case says so and is skipped.
#[test]
fn an_unwritable_log_directory_fails_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let file = write_config(dir.path(), &logs.join("events.log"), ONE_HOOK);
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root (as these tests run here) writes through the mode bits.
    let probe = logs.join("probe");
    let root = std::fs::write(&probe, "").is_ok();
    let _ = std::fs::remove_file(&probe);
    let out = if root {
        let script = format!(
            "mount --bind -o ro '{d}' '{d}' || exit 99; exec '{bin}' check-config '{f}'",
            d = logs.display(),
            bin = crate::common::bin(),
            f = file.display()
        );
        let run = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output();
        match run {
            Ok(o) if o.status.code() != Some(99) => CliOut {
                status: Some(o.status),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            other => {
                eprintln!(
                    "SKIPPED: running as root and no read-only bind mount is possible here ({other:?})"
                );
                return;
            }
        }
    } else {
        check(&file)
    };
    assert!(out.failed(), "unwritable directory accepted: {}", out.all());
    assert!(
        out.stderr.contains(&logs.display().to_string()) && out.stderr.contains("not writable"),
        "{}",
        out.all()
    );
    // Nothing was left behind by the probe.
    assert_eq!(std::fs::read_dir(&logs).unwrap().count(), 0);
}

#[test]
fn every_error_is_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = "\
[[hooks]]
path = \"/a\"
provider = \"netbux\"
secrets = [\"a-literal-secret-long-enough\"]

[[hooks]]
path = \"/b\"
provider = \"github\"
secrets = [\"env:WL_CHECK_UNSET_ONE\", \"env:WL_CHECK_UNSET_TWO\"]
allow_ips = [\"10.0.0.0/33\"]

[[hooks]]
path = \"/b\"
provider = \"gitlab\"
secrets = [\"file:/nonexistent/wl-secret\"]
";
    let file = dir.path().join("config.toml");
    let text = format!(
        "trusted_proxies = [\"not-a-cidr\"]\n[log]\nfile = {:?}\n{hooks}",
        dir.path().join("events.log").display().to_string()
    );
    std::fs::write(&file, text).unwrap();
    let out = check(&file);
    let err = &out.stderr;
    assert!(out.failed(), "{}", out.all());
    for (what, needle) in [
        ("unknown provider", "hooks[0].provider"),
        ("first unset variable", "WL_CHECK_UNSET_ONE"),
        ("second unset variable", "WL_CHECK_UNSET_TWO"),
        ("bad allow_ips", "hooks[1].allow_ips[0]"),
        ("duplicate path", "hooks[2].path"),
        ("unreadable secret file", "/nonexistent/wl-secret"),
        ("bad trusted_proxies", "trusted_proxies[0]"),
    ] {
        assert!(
            err.contains(needle),
            "{what} ({needle}) not reported:\n{err}"
        );
    }
    assert!(
        !err.contains("netbux") && !err.contains("not-a-cidr"),
        "values printed:\n{err}"
    );
    // One line per problem, each starting with the file.
    let f = file.display().to_string();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(&f)).collect();
    assert!(lines.len() >= 7, "{err}");
}

#[test]
fn syntax_only_checks_the_file_without_resolving_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = "\
[[hooks]]
path = \"/gh\"
provider = \"github\"
secrets = [\"env:WL_SYNTAX_ONLY_UNSET\"]

[[hooks]]
path = \"/gl\"
provider = \"gitlab\"
secrets = [\"file:/nonexistent/wl-ci-secret\"]
";
    // A log directory of the production machine, absent on a CI runner.
    let log = dir.path().join("var-log-absent/events.log");
    let file = write_config(dir.path(), &log, hooks);
    let full = check(&file);
    assert!(full.failed(), "{}", full.all());
    assert!(
        full.stderr.contains("WL_SYNTAX_ONLY_UNSET"),
        "{}",
        full.all()
    );

    let out = cli_env(
        &["check-config", "--syntax-only", file.to_str().unwrap()],
        &[],
        Duration::from_secs(10),
    );
    assert!(out.ok(), "--syntax-only with unset secrets: {}", out.all());
    assert!(
        out.stdout.contains("/gh") && out.stdout.contains("env:WL_SYNTAX_ONLY_UNSET"),
        "summary names the unresolved references: {}",
        out.stdout
    );
    assert!(out.stdout.contains("not resolved"), "{}", out.stdout);

    // It still checks everything else.
    let bad = write_config(
        dir.path(),
        &log,
        &hooks.replace(
            "provider = \"gitlab\"",
            "provider = \"gitlab\"\nallow_ips = [\"x/99\"]",
        ),
    );
    let out = cli(&["check-config", "--syntax-only", bad.to_str().unwrap()]);
    assert!(out.failed(), "{}", out.all());
    assert!(
        out.stderr.contains("hooks[1].allow_ips[0]"),
        "{}",
        out.all()
    );
    // And a literal secret is still checked: it needs nothing from the machine.
    let zero = write_config(
        dir.path(),
        &log,
        "[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\nsecrets = [\"\\u0000\"]\n",
    );
    let out = cli(&["check-config", "--syntax-only", zero.to_str().unwrap()]);
    assert!(
        out.failed() && out.stderr.contains("all zero"),
        "{}",
        out.all()
    );
}

#[test]
fn summary_lists_hooks_allowlists_and_proxy_settings() {
    let dir = tempfile::tempdir().unwrap();
    let rest = "\
[[hooks]]
path = \"/nb\"
provider = \"netbox\"
payload = \"json\"
secrets = [\"short\"]
allow_ips = [\"10.1.0.0/16\", \"192.0.2.7\"]

[[hooks]]
path = \"/open\"
provider = \"netbox\"
allow_unsigned = true
";
    let text =
        "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\nclient_ip_header = \"forwarded\"\n";
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\n{text}[log]\nfile = {:?}\n{rest}",
            dir.path().join("events.log").display().to_string()
        ),
    )
    .unwrap();
    let out = check(&file);
    assert!(out.ok(), "{}", out.all());
    let s = &out.stdout;
    assert!(
        s.contains("trusted_proxies 127.0.0.1/32, 10.0.0.0/8"),
        "{s}"
    );
    assert!(s.contains("client_ip_header forwarded"), "{s}");
    // The operator listener is part of what runs: the embedded default's address, no token.
    assert!(
        s.contains("admin 127.0.0.1:9000 (token none: loopback only, recent 1000"),
        "{s}"
    );
    let nb = s
        .lines()
        .find(|l| l.contains("/nb "))
        .expect("a line for /nb");
    assert!(
        nb.contains("provider=netbox")
            && nb.contains("payload=json")
            && nb.contains("allow_ips=10.1.0.0/16,192.0.2.7/32"),
        "{nb}"
    );
    let open = s
        .lines()
        .find(|l| l.contains("/open "))
        .expect("a line for /open");
    assert!(
        open.contains("payload=netbox")
            && open.contains("allow_ips=any")
            && open.contains("UNSIGNED"),
        "{open}"
    );
    assert!(
        s.lines()
            .any(|l| l.starts_with("warning:") && l.contains("shorter than 16 bytes")),
        "the warnings it already printed: {s}"
    );
    assert!(!s.contains("short\""), "{s}");
}

/// redis-rs reads `user` and `pass` from a `redis+unix://` URL's query: the summary shows the
/// sink's URL with those values masked, the rest (the socket, `db`) as written.
#[test]
fn credentials_in_a_sink_urls_query_are_masked_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let sink = "[[sinks]]\nname = \"cache\"\nkind = \"redis\"\n\
        url = \"redis+unix:///run/redis.sock?db=0&pass=hunter2&User=alice&p%61ssword=hunter3\"\n\
        stream = \"w\"\n";
    let file = write_config(
        dir.path(),
        &dir.path().join("events.log"),
        &format!("{ONE_HOOK}{sink}"),
    );
    let out = check(&file);
    assert!(out.ok(), "{}", out.all());
    let all = out.all();
    for secret in ["hunter2", "hunter3", "alice"] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("kind=redis"))
        .expect("a line for the sink");
    assert!(
        line.contains("url=redis+unix:///run/redis.sock?db=0&pass=***&User=***&p%61ssword=*** "),
        "{line}"
    );
}
