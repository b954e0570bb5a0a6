//! The `exec` sink: runs a command once per event, the body on its stdin and the event's metadata in
//! its environment; exit status 0 is delivered. The runner around it retries, bounds attempts and
//! dead-letters, as for every sink.
//!
//! A run is its own process group, so a timeout (or the command's own exit) takes everything it
//! started with it. Every running group is recorded in `<spool>/exec/<sink>/<pgid>` (with the leader's
//! start time, so a reused pid is never taken for it) and removed once reaped: after a crash the next
//! start kills what the previous process left running before that event runs again.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::{DeliveryError, Event, Sink};

/// Each of stdout and stderr is kept up to this much for the diagnostics; the rest is read and
/// dropped, so a chatty command never blocks on a full pipe.
pub const OUTPUT_CAP: usize = 64 << 10;
/// After the command exited (or was killed) and its group was killed, how long its pipes may take
/// to close: only a process that left the group (a daemon with its own session) can hold them.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);
/// How long a group killed at start-up may take to be gone before start-up goes on regardless.
const LEFTOVER_WAIT: Duration = Duration::from_secs(5);

/// The environment every run gets, before the configured `env` and `pass_env`.
pub const EVENT_ENV: [&str; 8] = [
    "WEBHOOK_EVENT_ID",
    "WEBHOOK_HOOK",
    "WEBHOOK_PROVIDER",
    "WEBHOOK_EVENT",
    "WEBHOOK_DELIVERY_ID",
    "WEBHOOK_RECEIVED_AT",
    "WEBHOOK_CLIENT",
    "WEBHOOK_CONTENT_TYPE",
];

/// An event field a command argument can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Event,
    Hook,
    Provider,
    EventId,
    DeliveryId,
}

const FIELDS: [(&str, Field); 5] = [
    ("event", Field::Event),
    ("hook", Field::Hook),
    ("provider", Field::Provider),
    ("event_id", Field::EventId),
    ("delivery_id", Field::DeliveryId),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

/// One argv element: text with `{event}`-style placeholders expanded inside it (never split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgTemplate {
    source: String,
    parts: Vec<Part>,
}

/// Why a `command` element or setting is refused (the config names the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecConfigError {
    #[error("{{{0}}} is not a placeholder; use {{event}} {{hook}} {{provider}} {{event_id}} {{delivery_id}}")]
    Placeholder(String),
    #[error("must not be empty")]
    EmptyProgram,
    #[error("{0:?} is a bare name and the command gets no PATH; give a full path, or add PATH to pass_env or env")]
    BareWithoutPath(String),
    #[error("{name:?} not found in the command's PATH ({path})")]
    NotInPath { name: String, path: String },
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{0} is not a file")]
    NotFile(PathBuf),
    #[error("{0} is not executable by this user")]
    NotExecutable(PathBuf),
}

impl ArgTemplate {
    /// `{name}` with a lower-case name is a placeholder (an unknown one is refused, so a typo is
    /// not run as text); any other brace is text, so `jq '{a: .b}'` passes as written.
    pub fn parse(source: &str) -> Result<ArgTemplate, ExecConfigError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 || !after[name_len..].starts_with('}') {
                text.push_str(&rest[..=open]);
                rest = after;
                continue;
            }
            let name = &after[..name_len];
            let field = FIELDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, f)| *f)
                .ok_or_else(|| ExecConfigError::Placeholder(name.to_owned()))?;
            text.push_str(&rest[..open]);
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Field(field));
            rest = &after[name_len + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(ArgTemplate {
            source: source.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn has_placeholders(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// The argument for `event`; a missing value is empty.
    fn render(&self, event: &Event) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => out.push_str(&field(event, *f)),
            }
        }
        out
    }
}

fn field(event: &Event, f: Field) -> std::borrow::Cow<'_, str> {
    match f {
        Field::Event => event.event_type.as_deref().unwrap_or("").into(),
        Field::Hook => event.hook.as_str().into(),
        Field::Provider => event.provider.as_str().into(),
        Field::EventId => event.id.to_string().into(),
        Field::DeliveryId => event.delivery_id.as_deref().unwrap_or("").into(),
    }
}

/// A configured environment value: may come from a secret, so it never shows in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvValue(pub OsString);

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// A validated `kind = "exec"` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    pub name: String,
    /// What is executed: `command[0]` resolved at config load (against the child's PATH when it is
    /// a bare name), so what runs is what `check-config` checked.
    pub program: PathBuf,
    /// `command`, `argv[0]` as written included.
    pub argv: Vec<ArgTemplate>,
    /// `env = {..}`, resolved; after the event's variables, so it may not name one of them.
    pub env: Vec<(String, EnvValue)>,
    /// Names copied from the service's own environment at each run (absent ones are left out).
    pub pass_env: Vec<String>,
    pub working_dir: Option<PathBuf>,
    /// Then the whole process group is killed.
    pub timeout: Duration,
}

impl ExecConfig {
    /// The PATH the child will get, if any: `env`'s, else the service's when `pass_env` has it.
    pub fn child_path(env: &[(String, EnvValue)], pass_env: &[String]) -> Option<OsString> {
        if let Some((_, v)) = env.iter().find(|(k, _)| k == "PATH") {
            return Some(v.0.clone());
        }
        if pass_env.iter().any(|k| k == "PATH") {
            return std::env::var_os("PATH");
        }
        None
    }
}

/// Resolves `command[0]` the way the child's exec would: a name with a `/` relative to `working_dir`
/// (or ours), a bare name along the child's `path` (never ours). Checks that it is an executable file.
pub fn resolve_program(
    argv0: &str,
    working_dir: Option<&Path>,
    path: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, ExecConfigError> {
    if argv0.is_empty() {
        return Err(ExecConfigError::EmptyProgram);
    }
    let base = working_dir.unwrap_or(Path::new("."));
    if argv0.contains('/') {
        let p = absolute(&base.join(argv0));
        check_executable(&p)?;
        return Ok(p);
    }
    let Some(path) = path else {
        return Err(ExecConfigError::BareWithoutPath(argv0.to_owned()));
    };
    let mut last = None;
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let p = absolute(&base.join(dir).join(argv0));
        match check_executable(&p) {
            Ok(()) => return Ok(p),
            Err(ExecConfigError::Missing(_)) => {}
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ExecConfigError::NotInPath {
        name: argv0.to_owned(),
        path: path.to_string_lossy().into_owned(),
    }))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn check_executable(p: &Path) -> Result<(), ExecConfigError> {
    let meta = std::fs::metadata(p).map_err(|_| ExecConfigError::Missing(p.to_path_buf()))?;
    if !meta.is_file() {
        return Err(ExecConfigError::NotFile(p.to_path_buf()));
    }
    rustix::fs::access(p, rustix::fs::Access::EXEC_OK)
        .map_err(|_| ExecConfigError::NotExecutable(p.to_path_buf()))
}

/// Why the sink cannot start (its record directory), or cannot record a run.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Where the service's exec sinks record their running process groups, one directory per sink.
pub fn records_parent(spool_dir: &Path) -> PathBuf {
    spool_dir.join("exec")
}

/// The same for `replay`: apart from the service's, which may be running beside it.
pub fn replay_records_parent(spool_dir: &Path) -> PathBuf {
    spool_dir.join("exec-replay")
}

/// One `kind = "exec"` sink.
pub struct ExecSink {
    config: ExecConfig,
    records: PathBuf,
    /// False after a run could not be started, until one could: `/healthz` and the metrics show it
    /// as the sink's `connected`.
    startable: AtomicBool,
}

impl ExecSink {
    /// Creates the record directory and kills every process group a previous process recorded and
    /// left running. Blocking (file I/O, and a bounded wait for killed groups to be gone): call it
    /// on a blocking thread, before the sink's runner starts.
    pub fn new(config: ExecConfig, records_parent: &Path) -> Result<ExecSink, ExecError> {
        let records = records_parent.join(&config.name);
        std::fs::create_dir_all(&records).map_err(|source| ExecError::Io {
            what: "create",
            path: records.clone(),
            source,
        })?;
        kill_leftovers(&config.name, &records)?;
        Ok(ExecSink {
            config,
            records,
            startable: AtomicBool::new(true),
        })
    }

    pub fn is_startable(&self) -> bool {
        self.startable.load(Ordering::Relaxed)
    }

    fn command(&self, event: &Event) -> Result<tokio::process::Command, DeliveryError> {
        let c = &self.config;
        let mut cmd = tokio::process::Command::new(&c.program);
        let mut argv = c.argv.iter().map(|a| a.render(event));
        if let Some(arg0) = argv.next() {
            cmd.arg0(no_nul("command[0]", arg0)?);
        }
        for (i, a) in argv.enumerate() {
            cmd.arg(no_nul(&format!("command[{}]", i + 1), a)?);
        }
        let received = event
            .received_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let values = [
            event.id.to_string(),
            event.hook.clone(),
            event.provider.clone(),
            field(event, Field::Event).into_owned(),
            field(event, Field::DeliveryId).into_owned(),
            received,
            event.client.clone().unwrap_or_default(),
            event.content_type.clone().unwrap_or_default(),
        ];
        cmd.env_clear();
        for (k, v) in EVENT_ENV.iter().zip(values) {
            cmd.env(k, no_nul(k, v)?);
        }
        for k in &c.pass_env {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        for (k, v) in &c.env {
            cmd.env(k, &v.0);
        }
        if let Some(d) = &c.working_dir {
            cmd.current_dir(d);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // Reaps the leader if the delivery is abandoned (shutdown); `Group` kills the rest.
            .kill_on_drop(true);
        Ok(cmd)
    }

    async fn run(&self, event: &Event) -> Result<(), DeliveryError> {
        let name = &self.config.name;
        let mut cmd = self.command(event)?;
        let started = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                self.startable.store(false, Ordering::Relaxed);
                let program = self.config.program.display();
                tracing::error!(sink = %name, event_id = %event.id, %program, error = %e,
                    "cannot start the command");
                return Err(spawn_error(&program.to_string(), e));
            }
        };
        self.startable.store(true, Ordering::Relaxed);
        let Some(pid) = child.id().and_then(|p| Pid::from_raw(p as i32)) else {
            // Only when already reaped, which nothing has done yet.
            return Err(DeliveryError::retry("the command's pid is unknown"));
        };
        let mut group = Group::new(pid);
        if let Err(e) = group.record(&self.records) {
            tracing::error!(sink = %name, event_id = %event.id, error = %e,
                "cannot record the command's process group; killed it, will retry");
            return Err(DeliveryError::retry(e));
        }
        // A pidfd sees the leader exit while it is still a zombie, so the group is killed before the
        // leader is reaped and its pgid cannot be reused meanwhile. Without pidfds (Linux < 5.3)
        // the wait reaps first, leaving a window of microseconds.
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
            .ok()
            // SAFETY: the `OwnedFd` moves into the `AsyncFd`, which alone closes it (when dropped).
            .and_then(|fd| unsafe {
                AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE).ok()
            });

        let (mut out, mut err) = (Capture::default(), Capture::default());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let body = &event.body;
        let io = async {
            let feed = async {
                if let Some(mut w) = stdin {
                    // EPIPE: the command did not read it all; that is its business.
                    let _ = w.write_all(body).await;
                    let _ = w.shutdown().await;
                }
            };
            tokio::join!(feed, capture(stdout, &mut out), capture(stderr, &mut err));
        };
        let deadline = started + self.config.timeout;
        let timed_out = {
            let mut io = std::pin::pin!(io);
            let mut io_done = false;
            let exited = async {
                match &pidfd {
                    Some(fd) => exited(fd).await,
                    None => {
                        let _ = child.wait().await;
                    }
                }
            };
            let mut exited = std::pin::pin!(tokio::time::timeout_at(deadline, exited));
            let timed_out = loop {
                tokio::select! {
                    () = &mut io, if !io_done => io_done = true,
                    r = &mut exited => break r.is_err(),
                }
            };
            group.kill();
            if !io_done {
                let _ = tokio::time::timeout(OUTPUT_GRACE, &mut io).await;
            }
            timed_out
        };
        let status = child.wait().await;
        group.reaped();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let outcome = match (&status, timed_out) {
            (_, true) => Err(format!(
                "timed out after {} s; process group killed",
                self.config.timeout.as_secs()
            )),
            (Ok(s), false) if s.success() => Ok(()),
            (Ok(s), false) => Err(describe_status(*s)),
            (Err(e), false) => Err(format!("cannot wait for the command: {e}")),
        };
        let (stdout, stderr) = (out.text(), err.text());
        let (stdout_dropped, stderr_dropped) = (out.dropped, err.dropped);
        match &outcome {
            Ok(()) if stdout.is_empty() && stderr.is_empty() => {
                tracing::debug!(sink = %name, event_id = %event.id, elapsed_ms, "command succeeded")
            }
            Ok(()) => tracing::info!(sink = %name, event_id = %event.id, elapsed_ms, %stdout,
                stdout_dropped, %stderr, stderr_dropped, "command succeeded"),
            Err(why) => tracing::warn!(sink = %name, event_id = %event.id, elapsed_ms,
                error = %why, %stdout, stdout_dropped, %stderr, stderr_dropped, "command failed"),
        }
        outcome.map_err(DeliveryError::retry)
    }
}

impl Sink for ExecSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    async fn deliver(&self, event: &Event) -> Result<(), DeliveryError> {
        self.run(event).await
    }
}

/// A value that cannot be an argument or environment value (NUL) is refused for this event: it can
/// never succeed, so it is dead-lettered rather than run with something else.
fn no_nul(what: &str, value: String) -> Result<String, DeliveryError> {
    if value.contains('\0') {
        Err(DeliveryError::Permanent(format!(
            "{what} would contain a NUL byte"
        )))
    } else {
        Ok(value)
    }
}

/// Not found, not executable, bad format, a missing `working_dir`: the same next time, so
/// dead-lettered at once. Out of processes, memory or descriptors, or the file being rewritten: retried.
fn spawn_error(program: &str, e: io::Error) -> DeliveryError {
    let transient = [
        Errno::AGAIN,
        Errno::NOMEM,
        Errno::MFILE,
        Errno::NFILE,
        Errno::TXTBSY,
        Errno::INTR,
    ];
    let msg = format!("cannot start {program}: {e}");
    match Errno::from_io_error(&e) {
        Some(n) if transient.contains(&n) => DeliveryError::retry(msg),
        _ => DeliveryError::Permanent(msg),
    }
}

fn describe_status(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{s}"),
    }
}

/// Waits until the pidfd's process has exited (it stays a zombie until reaped).
async fn exited(fd: &AsyncFd<OwnedFd>) {
    if let Ok(mut guard) = fd.readable().await {
        guard.retain_ready();
    }
}

/// The first [`OUTPUT_CAP`] bytes of a stream and how many more were dropped.
#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

async fn capture(reader: Option<impl AsyncRead + Unpin>, into: &mut Capture) {
    let Some(mut r) = reader else { return };
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let keep = n.min(OUTPUT_CAP - into.bytes.len());
                into.bytes.extend_from_slice(&chunk[..keep]);
                into.dropped += (n - keep) as u64;
            }
        }
    }
}

/// A running process group and its record. Dropped before [`reaped`](Self::reaped) (the delivery
/// abandoned at shutdown), it kills the group; the leader is reaped by tokio's `kill_on_drop`.
struct Group {
    pgid: Pid,
    record: Option<PathBuf>,
    reaped: bool,
}

impl Group {
    fn new(pgid: Pid) -> Group {
        Group {
            pgid,
            record: None,
            reaped: false,
        }
    }

    /// Not synced: it must outlive our process, not the machine (a power loss ends the group too).
    fn record(&mut self, dir: &Path) -> Result<(), ExecError> {
        let pgid = self.pgid.as_raw_nonzero().get();
        let path = dir.join(pgid.to_string());
        let start = proc_stat(pgid)
            .ok()
            .flatten()
            .map(|s| s.start_time)
            .ok_or_else(|| ExecError::Io {
                what: "read the start time of",
                path: PathBuf::from(format!("/proc/{pgid}/stat")),
                source: io::Error::other("process not found"),
            })?;
        std::fs::write(&path, format!("{pgid} {start}\n")).map_err(|source| ExecError::Io {
            what: "write",
            path: path.clone(),
            source,
        })?;
        self.record = Some(path);
        Ok(())
    }

    fn kill(&self) {
        let _ = kill_process_group(self.pgid, Signal::KILL);
    }

    fn reaped(&mut self) {
        self.reaped = true;
        if let Some(p) = self.record.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            self.reaped();
        }
    }
}

/// The fields of `/proc/<pid>/stat` we use.
struct ProcStat {
    state: char,
    pgrp: i32,
    /// In clock ticks since boot: with the pid, identifies one process for the machine's uptime.
    start_time: u64,
}

/// `None` when there is no such process.
fn proc_stat(pid: i32) -> io::Result<Option<ProcStat>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(parse_stat(&text))
}

/// The command name (field 2) is in parentheses and may hold anything, `)` included: the fields
/// after it start after the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); pgrp is field 5, starttime field 22.
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// Whether any live (not zombie) process is in group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| proc_stat(pid).ok().flatten())
        .any(|s| s.pgrp == pgid && s.state != 'Z' && s.state != 'X')
}

/// A record's `<pgid> <start time>`.
fn parse_record(text: &str) -> Option<(Pid, i32, u64)> {
    let mut words = text.split_whitespace();
    let pgid: i32 = words.next()?.parse().ok()?;
    let start: u64 = words.next()?.parse().ok()?;
    // Never kill(-1) (every process we may signal) or init's group, whatever the file says.
    if pgid <= 1 {
        return None;
    }
    Some((Pid::from_raw(pgid)?, pgid, start))
}

/// Kills every recorded group that is still the one recorded, removes every record, and waits (a
/// bounded time) until the killed groups are gone, so no old run overlaps the event's new one.
fn kill_leftovers(sink: &str, dir: &Path) -> Result<(), ExecError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ExecError::Io {
        what: "read",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut killed = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        match parse_record(&text) {
            Some((pid, pgid, start)) => {
                // The leader gone but its group alive means the pgid is still that group's (Linux
                // keeps a pid in use while it names a group); a leader with another start time
                // is a new process that reused the number.
                let ours = match proc_stat(pgid) {
                    Ok(Some(s)) => s.start_time == start,
                    Ok(None) => true,
                    Err(_) => false,
                };
                if ours && group_alive(pgid) && kill_process_group(pid, Signal::KILL).is_ok() {
                    tracing::warn!(sink, pgid,
                        "killed a command's process group left running when the service last stopped; its event runs again");
                    killed.push(pgid);
                }
            }
            None => {
                tracing::warn!(sink, record = %path.display(), "unreadable process-group record removed")
            }
        }
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(ExecError::Io {
                    what: "remove",
                    path,
                    source: e,
                });
            }
        }
    }
    let deadline = std::time::Instant::now() + LEFTOVER_WAIT;
    while killed.iter().any(|&g| group_alive(g)) {
        if std::time::Instant::now() > deadline {
            tracing::error!(sink, "killed process groups still alive; starting anyway");
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// For `check-config`: one line, without `env` values.
pub fn describe(c: &ExecConfig) -> String {
    let argv: Vec<&str> = c.argv.iter().map(ArgTemplate::as_str).collect();
    let keys: Vec<&str> = c.env.iter().map(|(k, _)| k.as_str()).collect();
    let mut s = format!(
        "command={:?} program={} timeout={}s",
        argv,
        c.program.display(),
        c.timeout.as_secs()
    );
    if !keys.is_empty() {
        s.push_str(&format!(" env={}", keys.join(",")));
    }
    if !c.pass_env.is_empty() {
        s.push_str(&format!(" pass_env={}", c.pass_env.join(",")));
    }
    if let Some(d) = &c.working_dir {
        s.push_str(&format!(" working_dir={}", d.display()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            id: uuid::Uuid::from_u128(1),
            hook: "/github".into(),
            provider: "github".into(),
            event_type: Some("push".into()),
            delivery_id: None,
            received_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            content_type: None,
            client: None,
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn placeholders_expand_inside_an_element_and_other_braces_are_text() {
        let e = event();
        let t = ArgTemplate::parse("--ref={hook}:{event}/{delivery_id}.").unwrap();
        assert_eq!(t.render(&e), "--ref=/github:push/.");
        let t = ArgTemplate::parse("{a: .b} { } {} {event").unwrap();
        assert_eq!(t.render(&e), "{a: .b} { } {} {event");
        assert_eq!(
            ArgTemplate::parse("{evnt}").unwrap_err(),
            ExecConfigError::Placeholder("evnt".into())
        );
        assert_eq!(
            ArgTemplate::parse("{event_id}").unwrap().render(&e),
            e.id.to_string()
        );
    }

    #[test]
    fn proc_stat_fields_are_read_after_the_last_parenthesis() {
        let line =
            "4242 (a) b) (c) S 1 4240 4240 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3\n";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.state, s.pgrp, s.start_time), ('S', 4240, 987654));
        assert!(parse_stat("garbage").is_none());
        let own = proc_stat(std::process::id() as i32).unwrap().unwrap();
        assert_eq!(own.pgrp, rustix::process::getpgrp().as_raw_nonzero().get());
    }

    #[test]
    fn a_bare_name_needs_the_childs_path() {
        assert!(matches!(
            resolve_program("sh", None, None),
            Err(ExecConfigError::BareWithoutPath(_))
        ));
        let p = resolve_program("sh", None, Some("/nonexistent:/bin:/usr/bin".as_ref())).unwrap();
        assert!(p.is_absolute() && p.ends_with("sh"), "{p:?}");
        assert!(matches!(
            resolve_program("no-such-command-xyz", None, Some("/bin".as_ref())),
            Err(ExecConfigError::NotInPath { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        assert_eq!(
            resolve_program("plain", None, Some(dir.path().as_os_str())),
            Err(ExecConfigError::NotExecutable(plain.clone()))
        );
        assert_eq!(
            resolve_program("./plain", Some(dir.path()), None),
            Err(ExecConfigError::NotExecutable(plain))
        );
        assert!(matches!(
            resolve_program("/", None, None),
            Err(ExecConfigError::NotFile(_))
        ));
    }
}
