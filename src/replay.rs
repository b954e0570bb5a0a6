//! `replay`: sends events to one configured sink again, either its dead letters (removing each one
//! now delivered) or the events of a JSON event log (delivered before or not). Each event goes
//! through the sink the service builds ([`service::build`]) with the sink's own retry policy
//! ([`runner::deliver_with_retries`]), keeping its event id and dedupe key, so replaying beside a
//! running server, or twice, adds nothing a broker has already de-duplicated.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;
use crate::diagnostics::{self, escape_hostile, DiagFormat};
use crate::event_log::read::{is_text_line, parse_json_line};
use crate::forward::lines::{Lines, MAX_LINE};
use crate::forward::runner::deliver_with_retries;
use crate::forward::service::{self, AnySink};
use crate::forward::spool::dead_letter::{self, DeadLetter, Fate};
use crate::forward::{DeliveryError, Event, SinkSpec};

/// Attempts per event when the sink itself never gives up (the brokers), so a replay against a
/// destination that is down ends instead of waiting forever.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Without a terminal, a count line every this many events…
const COUNT_EVERY_EVENTS: u64 = 1000;
/// …or this often, whichever comes first.
const COUNT_EVERY: Duration = Duration::from_secs(5);
/// Exit status for a replay that could not start (config, sink name, input file): nothing sent.
const EXIT_SETUP: u8 = 2;

/// `webhook-listener replay`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["dead_letters", "from_log"])
))]
pub struct ReplayArgs {
    /// The configuration the service runs with: the sink's settings and the spool directory.
    #[arg(long, short, env = "WEBHOOK_LISTENER_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// The `[[sinks]]` entry to send to, by name.
    #[arg(long, value_name = "NAME")]
    pub sink: String,
    /// Send the sink's dead letters (<spool dir>/dead-letter/<sink>.jsonl): each one delivered is
    /// removed from the file; one refused again stays, with its new attempts and error.
    #[arg(long)]
    pub dead_letters: bool,
    /// Send the events of this event log (written with [log] format = "json"), delivered before
    /// or not. The sink's own hooks/events filter applies.
    #[arg(long, value_name = "FILE")]
    pub from_log: Option<PathBuf>,
    /// Only events received at or after this time (RFC 3339, inclusive), e.g. 2026-11-23T15:00:00Z.
    #[arg(
        long,
        requires = "from_log",
        conflicts_with = "dead_letters",
        value_name = "TIME",
        value_parser = rfc3339
    )]
    pub since: Option<DateTime<Utc>>,
    /// Only events received before this time (RFC 3339, exclusive).
    #[arg(
        long,
        requires = "from_log",
        conflicts_with = "dead_letters",
        value_name = "TIME",
        value_parser = rfc3339
    )]
    pub until: Option<DateTime<Utc>>,
    /// Only events of this hook (its path exactly, e.g. /github).
    #[arg(
        long,
        requires = "from_log",
        conflicts_with = "dead_letters",
        value_name = "PATH"
    )]
    pub hook: Option<String>,
    /// Attempts per event in all, the first included (default: the sink's max_attempts, or 5 for
    /// a sink that retries without end, like the brokers).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,
}

fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time like 2026-11-23T15:00:00Z: {e}"))
}

/// Why a replay could not start; nothing was sent. Names files and the sink, never a secret.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("{0}")]
    Config(String),
    #[error("no sink named {name:?} in {config}; configured: {known}")]
    UnknownSink {
        name: String,
        config: String,
        known: String,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} is a text-format event log ([log] format = \"text\"); replay reads only JSON logs ([log] format = \"json\"); nothing sent")]
    TextLog(String),
    #[error("{0}")]
    Start(String),
}

/// Runs `replay`: the summary on stdout, progress and per-event problems on stderr. Exit 0 when
/// every event tried was delivered and every line read; 1 when anything failed or did not parse;
/// 2 when it could not start.
pub fn main(args: ReplayArgs) -> ExitCode {
    diagnostics::init_with_default(DiagFormat::Text, "warn");
    match run(args) {
        Ok(summary) => {
            println!("{}", summary.line());
            if summary.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("replay: {}", escape_hostile(line));
            }
            ExitCode::from(EXIT_SETUP)
        }
    }
}

fn run(args: ReplayArgs) -> Result<Summary, SetupError> {
    let config = Config::load(Some(&args.config)).map_err(|e| {
        // The config's own lines: file, line, column, key; one per problem.
        SetupError::Config(e.lines().join("\n"))
    })?;
    let spec = config
        .sinks
        .iter()
        .find(|s| s.name == args.sink)
        .cloned()
        .ok_or_else(|| SetupError::UnknownSink {
            name: args.sink.clone(),
            config: args.config.display().to_string(),
            known: match config.sinks.len() {
                0 => "none".to_owned(),
                _ => config
                    .sinks
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        })?;
    let source = match &args.from_log {
        Some(path) => {
            refuse_text_log(path)?;
            Source::Log(path.clone())
        }
        None => Source::DeadLetters(dead_letter::path(&config.spool.dir, &spec.name)),
    };
    // One worker beside this thread, so the Ctrl-C watcher runs even while the loop reads lines.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| SetupError::Start(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let exec_records = crate::forward::exec::replay_records_parent(&config.spool.dir);
        let sink = service::build(&spec, &exec_records)
            .await
            .map_err(|e| SetupError::Start(e.to_string()))?;
        let interrupted = CancellationToken::new();
        tokio::spawn(watch_interrupt(interrupted.clone()));
        let max_attempts = args
            .max_attempts
            .or(spec.runner.max_attempts)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS);
        let mut r = Replayer {
            sink,
            spec,
            max_attempts,
            summary: Summary::default(),
            progress: Progress::new(),
            interrupted,
        };
        match source {
            Source::DeadLetters(path) => r.dead_letters(&path).await?,
            Source::Log(path) => {
                let window = Window {
                    since: args.since,
                    until: args.until,
                    hook: args.hook,
                };
                r.log(&path, &window).await?
            }
        }
        r.progress.finish();
        Ok(r.summary)
    })
}

enum Source {
    DeadLetters(PathBuf),
    Log(PathBuf),
}

/// `--since`, `--until`, `--hook`.
struct Window {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    hook: Option<String>,
}

impl Window {
    fn takes(&self, e: &Event) -> bool {
        self.since.is_none_or(|t| e.received_at >= t)
            && self.until.is_none_or(|t| e.received_at < t)
            && self.hook.as_ref().is_none_or(|h| *h == e.hook)
    }
}

/// The first non-blank line decides: a text log is refused whole, before anything connects.
fn refuse_text_log(path: &Path) -> Result<(), SetupError> {
    let read = |source| SetupError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut lines = Lines::new(BufReader::new(File::open(path).map_err(read)?));
    if let Some(first) = lines.next_line().map_err(read)? {
        if first.text().is_some_and(is_text_line) {
            return Err(SetupError::TextLog(path.display().to_string()));
        }
    }
    Ok(())
}

/// The counts the summary and the progress show.
#[derive(Debug, Default, Clone)]
struct Summary {
    sent: u64,
    failed: u64,
    /// Outside `--since`/`--until`/`--hook`, or not taken by the sink's filter.
    skipped: u64,
    unparsable: u64,
    /// Why the replay ended before the end of its input, if it did.
    stopped: Option<String>,
}

impl Summary {
    fn counts(&self) -> String {
        format!(
            "{} sent, {} failed, {} skipped, {} unparsable",
            self.sent, self.failed, self.skipped, self.unparsable
        )
    }

    fn line(&self) -> String {
        let mut s = format!("replay: {}", self.counts());
        if let Some(why) = &self.stopped {
            let _ = write!(s, "; stopped early: {}", escape_hostile(why));
        }
        s
    }

    fn ok(&self) -> bool {
        self.failed == 0 && self.unparsable == 0 && self.stopped.is_none()
    }
}

/// A bar on a terminal, a count line now and then otherwise.
enum Progress {
    Bar(ProgressBar),
    Count { last: Instant, last_events: u64 },
}

impl Progress {
    fn new() -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Progress::Bar(bar)
        } else {
            Progress::Count {
                last: Instant::now(),
                last_events: 0,
            }
        }
    }

    fn start(&self, total_bytes: u64) {
        if let Progress::Bar(b) = self {
            b.set_length(total_bytes);
        }
    }

    fn update(&mut self, consumed: u64, s: &Summary) {
        match self {
            Progress::Bar(b) => {
                b.set_position(consumed);
                b.set_message(s.counts());
            }
            Progress::Count { last, last_events } => {
                let events = s.sent + s.failed + s.skipped + s.unparsable;
                if events - *last_events >= COUNT_EVERY_EVENTS || last.elapsed() >= COUNT_EVERY {
                    eprintln!("replay: {}", s.counts());
                    *last = Instant::now();
                    *last_events = events;
                }
            }
        }
    }

    /// A line on stderr that does not tear the bar.
    fn say(&self, line: &str) {
        let line = escape_hostile(line);
        match self {
            Progress::Bar(b) => b.suspend(|| eprintln!("replay: {line}")),
            Progress::Count { .. } => eprintln!("replay: {line}"),
        }
    }

    fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

/// What one event's replay came to.
enum Sent {
    Delivered,
    /// Refused for good, or out of attempts: the last error and the attempts made.
    Failed {
        attempts: u32,
        error: String,
    },
}

struct Replayer {
    sink: AnySink,
    spec: SinkSpec,
    max_attempts: u32,
    summary: Summary,
    progress: Progress,
    /// Ctrl-C: ends the replay between events (or during one's retries).
    interrupted: CancellationToken,
}

impl Replayer {
    /// Sends one event with the sink's retry policy. A destination that is still unreachable after
    /// every attempt, or asked us to stop (410), ends the replay: the next events would only wait
    /// the same way.
    async fn send(&mut self, event: &Event, line: usize) -> Sent {
        let progress = &self.progress;
        let (result, attempts) = deliver_with_retries(
            &self.sink,
            event,
            &self.spec.runner,
            Some(self.max_attempts),
            // Replay means send again: the service's age bound does not apply.
            None,
            |e, delay| {
                progress.say(&format!(
                    "event {} (line {line}): {e}; retrying in {} ms",
                    event.id,
                    delay.as_millis()
                ))
            },
        )
        .await;
        match result {
            Ok(()) => {
                self.summary.sent += 1;
                Sent::Delivered
            }
            Err(e) => {
                self.summary.failed += 1;
                let error = e.to_string();
                self.progress.say(&format!(
                    "event {} (line {line}): not delivered after {attempts} attempt(s): {error}",
                    event.id
                ));
                if matches!(e, DeliveryError::Retry { .. } | DeliveryError::Pause(_)) {
                    self.summary.stopped = Some(format!(
                        "sink {} did not take event {} ({error}); the events after it were not sent",
                        self.spec.name, event.id
                    ));
                }
                Sent::Failed { attempts, error }
            }
        }
    }

    /// [`send`](Self::send), or `None` on Ctrl-C (SIGINT), which ends the replay: what was
    /// delivered so far is still written back.
    async fn send_unless_interrupted(&mut self, event: &Event, line: usize) -> Option<Sent> {
        let interrupted = self.interrupted.clone();
        let sent = tokio::select! {
            sent = self.send(event, line) => Some(sent),
            _ = interrupted.cancelled() => None,
        };
        if sent.is_none() {
            self.summary.stopped = Some(format!("interrupted at line {line}"));
        }
        sent
    }

    /// Checked on every line, so skipping a long stretch of the log stops too.
    fn check_interrupted(&mut self, line: usize) -> bool {
        if self.interrupted.is_cancelled() && self.summary.stopped.is_none() {
            self.summary.stopped = Some(format!("interrupted at line {line}"));
        }
        self.summary.stopped.is_some()
    }

    fn unparsable(&mut self, line: usize, why: &str) {
        self.summary.unparsable += 1;
        self.progress.say(&format!("line {line}: {why}"));
    }

    /// `--dead-letters`: every letter in the file in order, then one rewrite under the file's lock
    /// that drops the delivered and updates the refused; letters the service appended meanwhile,
    /// and lines that do not parse, stay as they are.
    async fn dead_letters(&mut self, path: &Path) -> Result<(), SetupError> {
        let read = |source| SetupError::Read {
            path: path.display().to_string(),
            source,
        };
        let Some(mut reader) = dead_letter::Reader::open(path).map_err(read)? else {
            return Ok(());
        };
        self.progress
            .start(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
        // Keyed by what tells two letters of one event apart: its id and when it was given up on.
        let mut fates: HashMap<(Uuid, DateTime<Utc>), Sent> = HashMap::new();
        loop {
            let entry = match reader.next() {
                None => break,
                Some(Ok(entry)) => entry,
                Some(Err(e)) => {
                    // Stop reading, but still write back what was delivered so far.
                    self.summary.stopped = Some(read(e).to_string());
                    break;
                }
            };
            match entry.letter {
                Err(_) => self.unparsable(entry.line, "not a dead letter (left in the file)"),
                Ok(letter) => {
                    // Interrupted mid-send, the letter stays: sent or not, a later run re-sends
                    // it and the broker de-duplicates.
                    let Some(sent) = self
                        .send_unless_interrupted(&letter.event, entry.line)
                        .await
                    else {
                        break;
                    };
                    fates.insert((letter.event.id, letter.dead_lettered_at), sent);
                }
            }
            self.progress.update(reader.consumed(), &self.summary);
            if self.check_interrupted(entry.line) {
                break;
            }
        }
        let now = Utc::now();
        let fate = |l: &DeadLetter| match fates.get(&(l.event.id, l.dead_lettered_at)) {
            None => Fate::Keep,
            Some(Sent::Delivered) => Fate::Drop,
            Some(Sent::Failed { attempts, error }) => Fate::Replace(Box::new(DeadLetter {
                event: l.event.clone(),
                attempts: l.attempts.saturating_add(*attempts),
                error: error.clone(),
                dead_lettered_at: now,
            })),
        };
        // Blocking, like the reads above: a command line with nothing else to run meanwhile.
        if let Err(e) = dead_letter::rewrite(path, fate) {
            self.summary.stopped = Some(format!(
                "cannot rewrite {}: {e}; the letters delivered stay in it (a later run sends them again, and the broker de-duplicates)",
                path.display()
            ));
        }
        Ok(())
    }

    /// `--from-log`: every event line in order, sent when the window and the sink's filter take it.
    async fn log(&mut self, path: &Path, window: &Window) -> Result<(), SetupError> {
        let read = |source| SetupError::Read {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(read)?;
        self.progress
            .start(file.metadata().map(|m| m.len()).unwrap_or(0));
        let mut lines = Lines::new(BufReader::new(file));
        loop {
            let line = match lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    self.summary.stopped = Some(read(e).to_string());
                    break;
                }
            };
            match line.text().map(parse_json_line) {
                None => self.unparsable(
                    line.number,
                    &format!("longer than {MAX_LINE} bytes; not read"),
                ),
                Some(Err(e)) => self.unparsable(line.number, &e.to_string()),
                Some(Ok(event)) => {
                    if window.takes(&event) && self.spec.runner.filter.matches(&event) {
                        if self
                            .send_unless_interrupted(&event, line.number)
                            .await
                            .is_none()
                        {
                            break;
                        }
                    } else {
                        self.summary.skipped += 1;
                    }
                }
            }
            self.progress.update(lines.consumed(), &self.summary);
            if self.check_interrupted(line.number) {
                break;
            }
        }
        Ok(())
    }
}

/// The first Ctrl-C asks the replay to stop after writing back what it delivered; a second one
/// ends the process at once (a dead letter then stays, and is re-sent and de-duplicated later).
async fn watch_interrupt(token: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    token.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        replay: ReplayArgs,
    }

    #[test]
    fn help_names_the_default_attempts_and_which_end_of_the_window_is_inclusive() {
        let cmd = Cli::command();
        let help = |id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default()
        };
        assert!(
            help("max_attempts").contains(&format!("or {DEFAULT_MAX_ATTEMPTS} for")),
            "{}",
            help("max_attempts")
        );
        assert!(help("since").contains("inclusive"));
        assert!(help("until").contains("exclusive"));
    }

    #[test]
    fn exactly_one_source_and_window_flags_only_with_a_log() {
        use clap::Parser;
        let base = ["x", "--config", "c.toml", "--sink", "s"];
        let parse = |extra: &[&str]| Cli::try_parse_from(base.iter().chain(extra));
        assert!(parse(&[]).is_err(), "a source is required");
        assert!(parse(&["--dead-letters", "--from-log", "l"]).is_err());
        assert!(parse(&["--dead-letters", "--since", "2026-01-01T00:00:00Z"]).is_err());
        assert!(parse(&["--from-log", "l", "--since", "yesterday"]).is_err());
        let ok =
            parse(&["--from-log", "l", "--since", "2026-01-01T01:00:00+01:00"]).expect("parses");
        assert_eq!(
            ok.replay.since.map(|t| t.to_rfc3339()),
            Some("2026-01-01T00:00:00+00:00".into())
        );
        assert!(parse(&["--dead-letters", "--max-attempts", "0"]).is_err());
    }

    #[test]
    fn the_window_is_inclusive_then_exclusive() {
        let t = |s: u32| DateTime::from_timestamp(1_700_000_000 + i64::from(s), 0).expect("t");
        let w = Window {
            since: Some(t(10)),
            until: Some(t(20)),
            hook: Some("/a".into()),
        };
        let ev = |s, hook: &str| Event {
            id: Uuid::nil(),
            hook: hook.into(),
            provider: "p".into(),
            event_type: None,
            delivery_id: None,
            received_at: t(s),
            content_type: None,
            client: None,
            body: bytes::Bytes::new(),
        };
        assert!(!w.takes(&ev(9, "/a")));
        assert!(w.takes(&ev(10, "/a")));
        assert!(w.takes(&ev(19, "/a")));
        assert!(!w.takes(&ev(20, "/a")));
        assert!(!w.takes(&ev(15, "/b")));
    }

    /// The README states these numbers in words; they must be the ones the code uses.
    #[test]
    fn the_readme_states_the_defaults_the_code_uses() {
        let readme = include_str!("../README.md").replace('\n', " ");
        for said in [
            format!("gets {DEFAULT_MAX_ATTEMPTS} attempts per event"),
            format!(
                "every {},{:03} events or {} s",
                COUNT_EVERY_EVENTS / 1000,
                COUNT_EVERY_EVENTS % 1000,
                COUNT_EVERY.as_secs()
            ),
        ] {
            assert!(readme.contains(&said), "README: {said:?}");
        }
    }

    #[test]
    fn clean_escapes_what_would_drive_a_terminal() {
        assert_eq!(
            escape_hostile("a\u{1b}[2J\u{2028}b"),
            "a\\u{1b}[2J\\u{2028}b"
        );
        assert_eq!(escape_hostile("user=\u{202e}nimda"), "user=\\u{202e}nimda");
    }
}
