//! The `exec` sink through the running service: the real binary runs real shell scripts (written
//! here into temp dirs) that record what they were given to files, which the tests read back.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::{health, hook, read_lines, secret, Options, Provider, Server};
use crate::config_errors::cli;

/// Generous for a loaded CI box; every wait polls and returns as soon as its condition holds.
const PATIENCE: Duration = Duration::from_secs(60);

fn github_hook() -> String {
    hook(
        Provider::Github,
        "/github",
        &[secret(Provider::Github, 1)],
        "",
    )
}

/// Writes an executable `#!/bin/sh` script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An exec sink `name` running `program` with `extra` keys, spooling into `spool`.
fn exec_sink(name: &str, program: &Path, spool: &Path, extra: &str) -> String {
    format!(
        "[spool]\ndir = {:?}\n\n[[sinks]]\nname = \"{name}\"\nkind = \"exec\"\ncommand = [{:?}, \"--delivery={{delivery_id}}\", \"{{event}} {{hook}}\"]\npass_env = [\"PATH\"]\n{extra}\n",
        spool.display().to_string(),
        program.display().to_string()
    )
}

fn start(tables: &str, log: &Path, env: &[(&str, &str)]) -> Server {
    let hooks = format!("{}{tables}", github_hook());
    let log = log.display().to_string();
    Server::start_with(Options {
        log: "format = \"json\"",
        hooks: &hooks,
        log_file: Some(&log),
        env,
        ..Default::default()
    })
}

/// Posts a signed GitHub push with delivery `id`; must be accepted.
async fn push(server: &Server, id: &str, body: &[u8]) {
    let (status, _) = crate::forwarding::post_github(server, id, body).await;
    assert_eq!(status, 200, "delivery {id}");
}

fn github_body(n: usize) -> Vec<u8> {
    format!("{{\"ref\":\"refs/heads/main\",\"n\":{n},\"text\":\"caf\\u00e9 \\n \\\"q\\\"\"}}\n\t ")
        .into_bytes()
}

/// Polls `cond` until it holds, or fails with `what` and the server's diagnostics.
async fn wait_until(server: &Server, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Gone, or a zombie (dead; only its parent, init here, has yet to reap it).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

async fn wait_gone(server: &Server, what: &str, pid: i32) {
    wait_until(server, what, || process_gone(pid)).await;
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `NAME=value` pairs of a NUL-separated environ file.
fn environ(path: &Path) -> BTreeMap<String, String> {
    let raw = std::fs::read(path).unwrap();
    raw.split(|&b| b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let kv = String::from_utf8(kv.to_vec()).unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The `/healthz` entry of sink `name`.
async fn sink_health(server: &Server, name: &str) -> serde_json::Value {
    let h = health(server).await;
    h["sinks"]
        .as_array()
        .expect("sinks listed")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("sink {name} in {h}"))
        .clone()
}

#[tokio::test]
async fn every_event_runs_once_in_order_with_its_body_on_stdin_and_only_the_documented_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // /proc/$$/environ is what the shell was started with, before it adds anything of its own.
    let program = script(
        dir.path(),
        "record.sh",
        &format!(
            "set -eu\nd={out:?}\ncat > \"$d/$WEBHOOK_DELIVERY_ID.body\"\ncat /proc/$$/environ > \"$d/$WEBHOOK_DELIVERY_ID.env\"\nprintf '%s\\n' \"$0\" \"$@\" > \"$d/$WEBHOOK_DELIVERY_ID.args\"\necho \"$WEBHOOK_DELIVERY_ID\" >> \"$d/order\"\n",
            out = out.display().to_string()
        ),
    );
    let secret_value = "exec-secret-value-from-env-9f2c";
    let extra = "env = { DEPLOY_ENV = \"prod\", FROM_ENV = \"env:EXEC_TEST_SECRET_SRC\" }\n";
    let tables = exec_sink("record", &program, &dir.path().join("spool"), extra);
    let log = dir.path().join("events.log");
    let server = start(
        &tables,
        &log,
        &[
            ("EXEC_TEST_CANARY", "canary-must-not-leak"),
            ("EXEC_TEST_SECRET_SRC", secret_value),
        ],
    );

    let n = 12;
    let ids: Vec<String> = (0..n).map(|i| format!("d-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        push(&server, id, &github_body(i)).await;
    }
    let order = out.join("order");
    wait_until(&server, "every event run", || read_lines(&order).len() >= n).await;
    let h = sink_health(&server, "record").await;
    assert_eq!(h["kind"], "exec");

    assert_eq!(
        read_lines(&order),
        ids,
        "each event once, in the order accepted"
    );
    let logged: BTreeMap<String, serde_json::Value> = read_lines(&log)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["delivery_id"].as_str().unwrap().to_owned(), v))
        .collect();
    let path = std::env::var("PATH").unwrap();
    for (i, id) in ids.iter().enumerate() {
        let body = std::fs::read(out.join(format!("{id}.body"))).unwrap();
        assert_eq!(body, github_body(i), "{id}: body byte-identical on stdin");
        let args = read_lines(&out.join(format!("{id}.args")));
        assert_eq!(
            args,
            [
                program.display().to_string(),
                format!("--delivery={id}"),
                "push /github".to_owned()
            ],
            "{id}: argv, placeholders expanded inside each element"
        );
        let env = environ(&out.join(format!("{id}.env")));
        let keys: BTreeSet<&str> = env.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = [
            "WEBHOOK_EVENT_ID",
            "WEBHOOK_HOOK",
            "WEBHOOK_PROVIDER",
            "WEBHOOK_EVENT",
            "WEBHOOK_DELIVERY_ID",
            "WEBHOOK_RECEIVED_AT",
            "WEBHOOK_CLIENT",
            "WEBHOOK_CONTENT_TYPE",
            "PATH",
            "DEPLOY_ENV",
            "FROM_ENV",
        ]
        .into();
        assert_eq!(
            keys, expected,
            "{id}: exactly the documented environment (no canary)"
        );
        let line = &logged[id];
        assert_eq!(env["WEBHOOK_EVENT_ID"], line["event_id"].as_str().unwrap());
        assert_eq!(env["WEBHOOK_HOOK"], "/github");
        assert_eq!(env["WEBHOOK_PROVIDER"], "github");
        assert_eq!(env["WEBHOOK_EVENT"], "push");
        assert_eq!(&env["WEBHOOK_DELIVERY_ID"], id);
        let received = chrono::DateTime::parse_from_rfc3339(&env["WEBHOOK_RECEIVED_AT"]).unwrap();
        let logged_at =
            chrono::DateTime::parse_from_rfc3339(line["received_at"].as_str().unwrap()).unwrap();
        assert!((received - logged_at).num_milliseconds().abs() < 1000);
        assert_eq!(env["WEBHOOK_CLIENT"], "127.0.0.1");
        assert_eq!(env["WEBHOOK_CONTENT_TYPE"], "application/json");
        assert_eq!(env["PATH"], path, "pass_env copies the service's PATH");
        assert_eq!(env["DEPLOY_ENV"], "prod");
        assert_eq!(env["FROM_ENV"], secret_value, "an env: reference resolved");
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let h = sink_health(&server, "record").await;
        if h["delivered"] == n as u64 && h["lag_events"] == 0 {
            assert_eq!(h["connected"], true);
            break;
        }
        assert!(Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let diagnostics = server.stderr();
    assert!(!diagnostics.contains(secret_value), "{diagnostics}");
    let metrics = crate::common::metrics(&server).await;
    assert!(
        metrics.contains("webhook_sink_delivered_total{sink=\"record\"} 12"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_flaky_command_is_retried_and_a_failing_one_dead_lettered_while_the_next_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let program = script(
        dir.path(),
        "flaky.sh",
        &format!(
            "d={d:?}\nid=$WEBHOOK_DELIVERY_ID\necho run >> \"$d/runs.$id\"\nn=$(wc -l < \"$d/runs.$id\")\ncase $id in\n  flaky) [ \"$n\" -ge 3 ] || {{ echo \"flaky run $n\" >&2; exit 1; }} ;;\n  doomed) echo 'doomed to fail' >&2; exit 7 ;;\nesac\necho \"$id\" >> \"$d/done\"\n"
        ),
    );
    let spool = dir.path().join("spool");
    let extra = "max_attempts = 3\nretry_initial_secs = 1\nretry_max_secs = 1\n";
    let tables = exec_sink("deploy", &program, &spool, extra);
    let server = start(&tables, &dir.path().join("events.log"), &[]);

    for id in ["flaky", "doomed", "after"] {
        push(&server, id, b"{}").await;
    }
    let done = dir.path().join("done");
    wait_until(&server, "the event after the dead letter ran", || {
        read_lines(&done).len() >= 2
    })
    .await;
    assert_eq!(read_lines(&done), ["flaky", "after"], "in order, each once");
    let runs = |id: &str| read_lines(&dir.path().join(format!("runs.{id}"))).len();
    assert_eq!(runs("flaky"), 3, "failed twice, then delivered");
    assert_eq!(runs("doomed"), 3, "max_attempts runs in all");
    assert_eq!(runs("after"), 1);

    let letters = read_lines(&spool.join("dead-letter/deploy.jsonl"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter: serde_json::Value = serde_json::from_str(&letters[0]).unwrap();
    assert_eq!(letter["event"]["delivery_id"], "doomed");
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["error"], "exit status 7");
    let h = sink_health(&server, "deploy").await;
    assert_eq!(
        (h["delivered"].as_u64(), h["dead_lettered"].as_u64()),
        (Some(2), Some(1)),
        "{h}"
    );
    // The command's stderr is in the diagnostics, as a field of the run's one line.
    assert!(server.wait_for_stderr("doomed to fail", PATIENCE));
    assert!(server.stderr().contains("flaky run 2"));
}

#[tokio::test]
async fn a_hanging_command_and_its_grandchild_are_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let program = script(
        dir.path(),
        "hang.sh",
        &format!(
            "d={d:?}\nsleep 1000 &\necho $! > \"$d/grandchild\"\necho $$ > \"$d/leader\"\nsleep 1000\n"
        ),
    );
    let spool = dir.path().join("spool");
    let extra = "timeout_secs = 1\nmax_attempts = 1\n";
    let tables = exec_sink("hang", &program, &spool, extra);
    let server = start(&tables, &dir.path().join("events.log"), &[]);
    let started = Instant::now();
    push(&server, "h-1", b"{}").await;

    let letters_file = spool.join("dead-letter/hang.jsonl");
    wait_until(&server, "dead-lettered after the timeout", || {
        !read_lines(&letters_file).is_empty()
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the timeout"
    );
    let letter: serde_json::Value = serde_json::from_str(&read_lines(&letters_file)[0]).unwrap();
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 1 s"),
        "{letter}"
    );
    let grandchild = read_pid(&dir.path().join("grandchild"));
    let leader = read_pid(&dir.path().join("leader"));
    wait_gone(&server, "the grandchild killed", grandchild).await;
    wait_gone(&server, "the command killed", leader).await;
    let records = std::fs::read_dir(spool.join("exec/hang")).unwrap().count();
    assert_eq!(records, 0, "the reaped group's record removed");
}

/// A sink `blocky` whose command logs `<delivery id> <pid>` to `started`, then blocks until the
/// test creates `release`, then logs the delivery id to `done`.
struct Blocking {
    dir: tempfile::TempDir,
    spool: PathBuf,
    tables: String,
    log: PathBuf,
    started: PathBuf,
}

impl Blocking {
    fn new() -> Blocking {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let program = script(
            dir.path(),
            "block.sh",
            &format!(
                "d={d:?}\necho \"$WEBHOOK_DELIVERY_ID $$\" >> \"$d/started\"\nwhile [ ! -e \"$d/release\" ]; do sleep 0.02; done\necho \"$WEBHOOK_DELIVERY_ID\" >> \"$d/done\"\n"
            ),
        );
        let spool = dir.path().join("spool");
        let tables = exec_sink("blocky", &program, &spool, "");
        let (log, started) = (dir.path().join("events.log"), dir.path().join("started"));
        Blocking {
            dir,
            spool,
            tables,
            log,
            started,
        }
    }
}

#[tokio::test]
async fn after_kill_9_the_leftover_command_is_killed_and_its_event_runs_again_none_skipped() {
    let Blocking {
        dir,
        spool,
        tables,
        log,
        started,
    } = Blocking::new();
    let done = dir.path().join("done");

    let mut first = start(&tables, &log, &[]);
    for id in ["e1", "e2", "e3"] {
        push(&first, id, b"{}").await;
    }
    wait_until(&first, "e1 running", || !read_lines(&started).is_empty()).await;
    let line = read_lines(&started)[0].clone();
    let (id, pid) = line.split_once(' ').unwrap();
    assert_eq!(id, "e1");
    let old: i32 = pid.parse().unwrap();
    let record = spool.join(format!("exec/blocky/{old}"));
    // The group is recorded right after the spawn, so the command may have started first.
    wait_until(&first, "the running group recorded", || record.exists()).await;

    first.signal(Signal::SIGKILL);
    first.wait_exit(PATIENCE).expect("killed");
    assert!(
        !process_gone(old),
        "the command outlives the killed receiver"
    );

    let second = start(&tables, &log, &[]);
    assert!(
        process_gone(old),
        "the leftover is killed before the server serves"
    );
    wait_until(&second, "e1 running again", || {
        read_lines(&started).len() >= 2
    })
    .await;
    assert!(second.stderr().contains("killed a command's process group"));
    std::fs::write(dir.path().join("release"), "").unwrap();
    wait_until(&second, "all three done", || read_lines(&done).len() >= 3).await;
    assert_eq!(
        read_lines(&done),
        ["e1", "e2", "e3"],
        "none skipped, none twice"
    );
    let ids: Vec<String> = read_lines(&started)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["e1", "e1", "e2", "e3"]);
}

#[tokio::test]
async fn sigterm_kills_a_command_still_running_at_the_deadline_and_its_event_runs_after_restart() {
    let Blocking {
        dir,
        spool,
        tables,
        log,
        started,
    } = Blocking::new();
    let start_with_deadline = || {
        let hooks = format!("{}{tables}", github_hook());
        let log = log.display().to_string();
        Server::start_with(Options {
            top: "shutdown_timeout_secs = 1",
            log: "format = \"json\"",
            hooks: &hooks,
            log_file: Some(&log),
            ..Default::default()
        })
    };

    let mut first = start_with_deadline();
    push(&first, "t1", b"{}").await;
    wait_until(&first, "t1 running", || !read_lines(&started).is_empty()).await;
    let old: i32 = read_lines(&started)[0]
        .split_once(' ')
        .unwrap()
        .1
        .parse()
        .unwrap();
    first.signal(Signal::SIGTERM);
    let status = first.wait_exit(PATIENCE).expect("stops after its deadline");
    assert!(status.success(), "{status:?}\n{}", first.stderr());
    wait_gone(&first, "the abandoned command killed", old).await;
    assert_eq!(
        std::fs::read_dir(spool.join("exec/blocky"))
            .unwrap()
            .count(),
        0,
        "its record removed"
    );

    std::fs::write(dir.path().join("release"), "").unwrap();
    let second = start_with_deadline();
    let done = dir.path().join("done");
    wait_until(&second, "t1 run again and done", || {
        !read_lines(&done).is_empty()
    })
    .await;
    assert_eq!(read_lines(&done), ["t1"]);
    assert_eq!(read_lines(&started).len(), 2, "started once per server");
}

#[test]
fn check_config_refuses_a_command_that_cannot_be_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.log");
    let write = |sink: &str| {
        let file = dir.path().join("config.toml");
        let text = format!(
            "listen = \"127.0.0.1:0\"\n[log]\nfile = {:?}\n{}\n[[sinks]]\nname = \"deploy\"\nkind = \"exec\"\n{sink}",
            log.display().to_string(),
            github_hook()
        );
        std::fs::write(&file, text).unwrap();
        file
    };
    let check = |sink: &str| cli(&["check-config", write(sink).to_str().unwrap()]);

    let out = check("command = [\"/nonexistent/deploy\", \"{event}\"]\n");
    assert!(out.failed(), "{}", out.all());
    assert!(
        out.stderr.contains("sinks[0]")
            && out.stderr.contains("command[0]")
            && out.stderr.contains("/nonexistent/deploy does not exist"),
        "{}",
        out.all()
    );

    // --syntax-only looks at nothing on this machine (CI checks the file before the host has it).
    let file = write("command = [\"/nonexistent/deploy\", \"{event}\"]\n");
    let out = cli(&["check-config", "--syntax-only", file.to_str().unwrap()]);
    assert!(out.ok(), "{}", out.all());

    let out = check("command = [\"deploy\"]\n");
    assert!(out.failed(), "{}", out.all());
    assert!(
        out.stderr
            .contains("give a full path, or add PATH to pass_env"),
        "{}",
        out.all()
    );

    let out = check("command = [\"no-such-command-4d1e\"]\npass_env = [\"PATH\"]\n");
    assert!(
        out.failed() && out.stderr.contains("not found in the command's PATH"),
        "{}",
        out.all()
    );

    let plain = script(dir.path(), "plain.sh", "exit 0\n");
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = check(&format!("command = [{:?}]\n", plain.display().to_string()));
    assert!(
        out.failed() && out.stderr.contains("is not executable"),
        "{}",
        out.all()
    );

    let out = check("command = [\"/bin/true\"]\nurl = \"nats://x\"\n");
    assert!(
        out.failed()
            && out
                .stderr
                .contains("url: only applies to kind = \"nats\" or kind = \"redis\""),
        "{}",
        out.all()
    );
    let out = check("command = [\"/bin/true\"]\nconcurrency = 2\nmax_in_flight = 2\n");
    assert!(
        out.failed() && out.stderr.contains("set one"),
        "{}",
        out.all()
    );

    let out = check(
        "command = [\"/bin/true\", \"{event}\"]\nenv = { TOKEN = \"literal:do-not-print-me\" }\nconcurrency = 8\n",
    );
    assert!(out.ok(), "{}", out.all());
    assert!(
        out.stdout.contains("kind=exec")
            && out.stdout.contains("concurrency=8")
            && out.stdout.contains("max_attempts=5")
            && out.stdout.contains("env=TOKEN"),
        "{}",
        out.all()
    );
    assert!(!out.all().contains("do-not-print-me"), "{}", out.all());
}

#[tokio::test]
async fn a_command_that_ignores_a_large_body_and_floods_its_output_neither_blocks_nor_fails() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    // Never reads stdin; writes 2 MB to stdout and 100 KB to stderr, far past what a pipe holds.
    let program = script(
        dir.path(),
        "flood.sh",
        &format!(
            "d={d:?}\nhead -c 2000000 /dev/zero | tr '\\0' o\nhead -c 100000 /dev/zero | tr '\\0' e >&2\necho \"$WEBHOOK_DELIVERY_ID\" >> \"$d/done\"\n"
        ),
    );
    let spool = dir.path().join("spool");
    let tables = exec_sink(
        "flood",
        &program,
        &spool,
        "timeout_secs = 30\nmax_attempts = 1\n",
    );
    let server = start(&tables, &dir.path().join("events.log"), &[]);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(900_000));
    push(&server, "big-1", big.as_bytes()).await;
    push(&server, "big-2", big.as_bytes()).await;

    let done = dir.path().join("done");
    wait_until(&server, "both runs finished", || {
        read_lines(&done).len() >= 2
    })
    .await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let h = sink_health(&server, "flood").await;
        if h["delivered"] == 2 {
            assert_eq!(h["dead_lettered"], 0, "{h}");
            break;
        }
        assert!(Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The diagnostics keep 64 KiB of each stream, on one line per run, and count the rest.
    let stderr = server.stderr();
    let runs: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("command succeeded"))
        .collect();
    assert_eq!(runs.len(), 2, "{stderr:.2000}");
    for line in runs {
        assert!(line.contains(&"o".repeat(65536)), "stdout kept");
        assert!(!line.contains(&"o".repeat(65537)), "stdout capped");
        assert!(
            line.contains("stdout_dropped=1934464"),
            "{:.300}",
            &line[line.len() - 300..]
        );
        assert!(line.contains("stderr_dropped=34464"));
    }
}

#[tokio::test]
async fn a_command_that_cannot_start_is_dead_lettered_at_once_and_shown_on_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "gone.sh", "exit 0\n");
    let spool = dir.path().join("spool");
    // Many attempts allowed: a command that cannot be started must not use them.
    let tables = exec_sink("gone", &program, &spool, "max_attempts = 50\n");
    let server = start(&tables, &dir.path().join("events.log"), &[]);
    std::fs::remove_file(&program).unwrap();
    push(&server, "g-1", b"{}").await;

    let letters_file = spool.join("dead-letter/gone.jsonl");
    // A complete line: the test may read while the letter is being written.
    wait_until(&server, "dead-lettered", || {
        std::fs::read_to_string(&letters_file).is_ok_and(|s| s.ends_with('\n'))
    })
    .await;
    let letter: serde_json::Value = serde_json::from_str(&read_lines(&letters_file)[0]).unwrap();
    assert_eq!(letter["attempts"], 1, "{letter}");
    let error = letter["error"].as_str().unwrap();
    assert!(
        error.contains("cannot start") && error.contains("gone.sh"),
        "{error}"
    );
    // The diagnostic is read from the pipe by another thread: wait for it, do not race it.
    assert!(server.wait_for_stderr("cannot start the command", PATIENCE));
    let h = sink_health(&server, "gone").await;
    assert_eq!(h["connected"], false, "{h}");
}

#[tokio::test]
async fn replay_runs_a_dead_letter_again_beside_the_server_without_touching_its_running_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let program = script(
        dir.path(),
        "run.sh",
        &format!(
            "d={d:?}\nid=$WEBHOOK_DELIVERY_ID\necho \"$id $$\" >> \"$d/started\"\ncase $id in\n  block*) while [ ! -e \"$d/release\" ]; do sleep 0.02; done ;;\n  *) [ -e \"$d/fixed\" ] || exit 3 ;;\nesac\necho \"$id\" >> \"$d/done\"\n"
        ),
    );
    let spool = dir.path().join("spool");
    let tables = exec_sink("run", &program, &spool, "max_attempts = 1\n");
    let server = start(&tables, &dir.path().join("events.log"), &[]);
    let letters = spool.join("dead-letter/run.jsonl");
    push(&server, "bad-1", b"{\"n\":1}").await;
    wait_until(&server, "bad-1 dead-lettered", || {
        read_lines(&letters).len() == 1
    })
    .await;
    let started = dir.path().join("started");
    push(&server, "block-1", b"{\"n\":2}").await;
    wait_until(&server, "block-1 running", || {
        read_lines(&started).len() == 2
    })
    .await;
    let running: i32 = read_lines(&started)[1]
        .split_once(' ')
        .unwrap()
        .1
        .parse()
        .unwrap();

    std::fs::write(dir.path().join("fixed"), "").unwrap();
    let run = tokio::process::Command::new(crate::common::bin())
        .args(["replay", "--config"])
        .arg(&server.config_path)
        .args(["--sink", "run", "--dead-letters"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(PATIENCE, run).await.unwrap().unwrap();
    let says = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{says}");
    assert_eq!(read_lines(&dir.path().join("done")), ["bad-1"], "{says}");
    assert!(
        read_lines(&letters).is_empty(),
        "the delivered letter removed"
    );
    assert!(
        !process_gone(running),
        "replay left the service's running command alone"
    );

    std::fs::write(dir.path().join("release"), "").unwrap();
    wait_until(&server, "block-1 done", || {
        read_lines(&dir.path().join("done")).len() == 2
    })
    .await;
    assert_eq!(read_lines(&dir.path().join("done")), ["bad-1", "block-1"]);
}
