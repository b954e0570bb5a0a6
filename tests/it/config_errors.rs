//! Issue #11, hole 2: a config error never prints a secret. `check-config`, start-up and a refused
//! SIGHUP reload name the file, the line, a column and the key (where there is one), and never quote
//! the source line or a value. Ported from the independent issue-11 attack suite (hole 2; in the git history at `tests/pending/`).

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use nix::sys::signal::Signal;

/// Bound on a process that must exit by itself.
const EXIT: Duration = Duration::from_secs(10);

const LEAKED: &str = "hunter2";

/// What a bounded CLI run gave.
pub struct CliOut {
    /// `None`: still running at the timeout (then killed).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    pub fn failed(&self) -> bool {
        self.status.is_some_and(|s| !s.success())
    }
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
    /// stdout and stderr together, for "the message says …" checks that do not care which.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs the binary with `args` and `env`, killed after `timeout` (a config that unexpectedly loads
/// would otherwise serve forever).
pub fn cli_env(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> CliOut {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("WEBHOOK_LISTENER_CONFIG")
        .env_remove("WEBHOOK_LISTENER_LISTEN")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn webhook-listener");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CliOut {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

pub fn cli(args: &[&str]) -> CliOut {
    cli_env(args, &[], EXIT)
}

/// The config with `line7` as line 7 (the hook's fourth line).
fn seven_lines(log: &Path, line7: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\n[log]\nfile = {:?}\n[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\n{line7}\n",
        log.display().to_string()
    )
}

struct Broken {
    what: &'static str,
    line7: &'static str,
    /// The key the message must name, if the error has one.
    key: Option<&'static str>,
    /// Lines the message may name (a syntax error at the end of the file may point past it).
    lines: &'static [usize],
}

const BROKEN: [Broken; 7] = [
    Broken {
        what: "unknown key (typo)",
        line7: "secret = [\"hunter2-secret-value\"]",
        key: Some("secret"),
        lines: &[7],
    },
    Broken {
        what: "wrong type",
        line7: "secrets = \"hunter2-secret-value\"",
        key: Some("secrets"),
        lines: &[7],
    },
    Broken {
        what: "unclosed array",
        line7: "secrets = [\"hunter2-secret-value\"",
        key: None,
        lines: &[7, 8],
    },
    Broken {
        what: "unterminated string",
        line7: "secrets = [\"hunter2-secret-value]",
        key: None,
        lines: &[7, 8],
    },
    Broken {
        what: "duplicate key",
        line7: "secrets = [\"a-first-secret-value\"]\nsecrets = [\"hunter2-secret-value\"]",
        key: Some("secrets"),
        lines: &[8],
    },
    Broken {
        what: "value not among the choices",
        line7: "payload = \"hunter2-secret-value\"",
        key: Some("payload"),
        lines: &[7],
    },
    Broken {
        what: "secret in an integer's place",
        line7: "secrets = [\"k-long-enough-0123456789\"]\ntolerance_secs = \"hunter2\"",
        key: Some("tolerance_secs"),
        lines: &[8],
    },
];

/// Whether `msg` names `word` as a whole word (so `secrets` does not count as `secret`).
fn names_word(msg: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    msg.match_indices(word).any(|(i, _)| {
        let before = msg[..i].chars().next_back();
        let after = msg[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Whether `msg` names one of `lines`: `line 7` (prose) or `FILE:7` (compiler style).
fn names_line(msg: &str, file: &str, lines: &[usize]) -> bool {
    lines.iter().any(|n| {
        ["line ", "line: ", "line="]
            .iter()
            .any(|p| names_word(msg, &format!("{p}{n}")))
            || msg
                .match_indices(&format!("{file}:{n}"))
                .any(|(i, m)| !msg[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Whether `msg` gives a column: `column 3` (prose) or `FILE:7:3` (compiler style).
fn names_column(msg: &str, file: &str, lines: &[usize]) -> bool {
    let prose = msg.to_ascii_lowercase().split("column").skip(1).any(|r| {
        r.trim_start_matches([' ', ':', '='])
            .starts_with(|c: char| c.is_ascii_digit())
    });
    prose
        || lines.iter().any(|n| {
            msg.match_indices(&format!("{file}:{n}:"))
                .any(|(i, m)| msg[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
        })
}

#[test]
fn message_matchers_accept_the_usual_shapes() {
    let file = "/etc/wl/config.toml";
    let compiler = "/etc/wl/config.toml:7:1: unknown key `secret` in [[hooks]]";
    let prose =
        "invalid config /etc/wl/config.toml, line 7, column 11: key `secrets`: expected an array";
    for msg in [compiler, prose] {
        assert!(names_line(msg, file, &[7]), "{msg}");
        assert!(names_column(msg, file, &[7]), "{msg}");
        assert!(!names_line(msg, file, &[1, 17]), "{msg}");
    }
    assert!(names_word(compiler, "secret") && !names_word(compiler, "secrets"));
    assert!(names_word(prose, "secrets") && !names_word(prose, "secret"));
    assert!(!names_column("/etc/wl/config.toml: line 7", file, &[7]));
}

fn check_config_message(b: &Broken, via: &str, file: &Path, msg: &str) {
    let ctx = format!("{} via {via}:\n{msg}", b.what);
    assert!(!msg.contains(LEAKED), "secret printed: {ctx}");
    let file = file.display().to_string();
    assert!(msg.contains(&file), "names the file: {ctx}");
    assert!(names_line(msg, &file, b.lines), "names the line: {ctx}");
    assert!(names_column(msg, &file, b.lines), "names a column: {ctx}");
    if let Some(key) = b.key {
        assert!(names_word(msg, key), "names the key {key:?}: {ctx}");
    }
}

#[test]
fn config_errors_in_check_config_and_start_up_never_print_the_secret() {
    for b in &BROKEN {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, seven_lines(&dir.path().join("e.log"), b.line7)).unwrap();

        let out = cli(&["check-config", file.to_str().unwrap()]);
        assert!(
            out.failed(),
            "{}: check-config must fail: {}",
            b.what,
            out.all()
        );
        check_config_message(b, "check-config", &file, &out.all());

        let out = cli(&["--config", file.to_str().unwrap()]);
        assert!(
            out.failed(),
            "{}: start-up must fail: {}",
            b.what,
            out.all()
        );
        check_config_message(b, "start-up", &file, &out.all());
    }
}

#[test]
fn refused_reload_never_prints_the_secret() {
    let server = Server::start_with(Options {
        hooks: "[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\nsecrets = [\"good-secret-1-long-enough\"]\n",
        ..Default::default()
    });
    for b in &BROKEN {
        let mark = server.stderr().len();
        std::fs::write(&server.config_path, seven_lines(&server.log_path, b.line7)).unwrap();
        server.signal(Signal::SIGHUP);
        let deadline = Instant::now() + EXIT;
        // The refusal's last line: waiting for it keeps this reload's lines out of the next one's.
        while !server.stderr()[mark..].contains("previous config stays in force")
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let msg = server.stderr()[mark..].to_string();
        assert!(
            msg.contains("reload refused"),
            "{}: no refusal line: {msg}",
            b.what
        );
        check_config_message(b, "SIGHUP reload", &server.config_path, &msg);
    }
}

/// Errors of our own validation name the file, the key and its line, and never the value; secret
/// files' contents never appear, whatever is wrong with them.
#[test]
fn validation_errors_name_file_key_and_line_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero-secret");
    std::fs::write(&zero, b"\0\0\0\0").unwrap();
    let cases: Vec<(&str, String, &str, usize)> = vec![
        (
            "all-zero literal key",
            "secrets = [\"\\u0000\\u0000\"]".into(),
            "hooks[0].secrets[0]",
            7,
        ),
        (
            "bad CIDR that quotes a secret",
            "secrets = [\"k-long-enough-0123456789\"]\nallow_ips = [\"10.0.0.0/8\", \"hunter2/33\"]"
                .into(),
            "hooks[0].allow_ips[1]",
            8,
        ),
        (
            "unset env: secret",
            "secrets = [\"env:WL_TEST_UNSET_hunter2_NAME_ISNT_SECRET\"]".into(),
            "hooks[0].secrets[0]",
            7,
        ),
        (
            "all-zero file: secret",
            format!("secrets = [\"file:{}\"]", zero.display()),
            "hooks[0].secrets[0]",
            7,
        ),
    ];
    for (what, line7, key, line) in cases {
        let file = dir.path().join("config.toml");
        let text = seven_lines(&dir.path().join("e.log"), &line7);
        std::fs::write(&file, text).unwrap();
        for args in [
            vec!["check-config", file.to_str().unwrap()],
            vec!["--config", file.to_str().unwrap()],
        ] {
            let out = cli(&args);
            let msg = out.all();
            assert!(out.failed(), "{what} via {args:?}: {msg}");
            let f = file.display().to_string();
            assert!(
                msg.contains(&format!("{f}:{line}:")),
                "{what}: file and line: {msg}"
            );
            assert!(msg.contains(key), "{what}: names {key}: {msg}");
            // The env variable's name is a reference, not a secret: it is named; nothing else is.
            let without_name = msg.replace("WL_TEST_UNSET_hunter2_NAME_ISNT_SECRET", "");
            assert!(
                !without_name.contains(LEAKED),
                "{what}: value printed: {msg}"
            );
            assert!(!msg.contains('\0'), "{what}: value printed: {msg}");
        }
    }
}
