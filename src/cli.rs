//! The command line: serve (default), `check-config`, `sign`, `healthcheck`, `replay`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use strum::VariantNames;

use crate::app::App;
use crate::config::{resolve_secret, Config};
use crate::diagnostics::{self, DiagFormat};
use crate::http::SERVICE;
use crate::signature::{self, Algorithm, Encoding, Provider, Scheme};

#[derive(Debug, Parser)]
#[command(
    name = "webhook-listener",
    version = VERSION,
    about = "Receives webhooks, verifies their signatures over the raw body, and appends each accepted event durably to a log file.",
    // `webhook-listener --config X check-config Y` is refused rather than `--config` ignored:
    // serving flags belong to serving, and each subcommand has its own.
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--version`: the package version and the commit it was built from (build.rs); the same two
/// values as [`crate::metrics::VERSION`] and [`crate::metrics::COMMIT`].
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("WEBHOOK_LISTENER_COMMIT"),
    ")"
);

/// What serving reads; the same flags with and without the `serve` word.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML). Without it, the embedded default: one NetBox hook at /webhook/
    /// with the secret from WEBHOOK_SECRET, listening on 0.0.0.0:8000.
    #[arg(long, short, env = "WEBHOOK_LISTENER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding the config's `listen` (e.g. 127.0.0.1:9000).
    #[arg(long, env = "WEBHOOK_LISTENER_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// How diagnostics are written to stderr: text lines, or one JSON object per line.
    #[arg(
        long,
        env = "WEBHOOK_LISTENER_LOG_FORMAT",
        value_enum,
        default_value_t = DiagFormat::Text
    )]
    pub log_format: DiagFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve webhooks (the default when no command is given).
    Serve(ServeArgs),
    /// Parse and validate a config file and resolve every secret; start nothing.
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
        /// Check the file only: no env:/file: secret resolved, no directory looked at (for CI).
        #[arg(long, conflicts_with = "connect")]
        syntax_only: bool,
        /// Also reach every sink's broker once.
        #[arg(long)]
        connect: bool,
    },
    /// Print the header(s) a sender would send for a body, to test a setup with curl.
    Sign {
        /// The sender to sign as.
        #[arg(long, value_parser = by_name::<Provider>())]
        provider: Provider,
        /// The secret: a literal, env:NAME or file:/path.
        #[arg(long)]
        secret: String,
        /// Unix time to sign with (timestamped schemes); default now.
        #[arg(long)]
        timestamp: Option<i64>,
        /// Delivery id to sign with or send (standard-webhooks, github, shopify); default a new UUID.
        #[arg(long)]
        id: Option<String>,
        /// hmac provider: the signature header.
        #[arg(long, default_value = "X-Signature")]
        header: String,
        /// hmac provider: the digest.
        #[arg(long, default_value = "sha256", value_parser = by_name::<Algorithm>())]
        algorithm: Algorithm,
        /// hmac provider: how the digest is written.
        #[arg(long, default_value = "hex", value_parser = by_name::<Encoding>())]
        encoding: Encoding,
        /// hmac provider: text before the signature, e.g. sha256=.
        #[arg(long, default_value = "")]
        prefix: String,
        /// twilio: the webhook URL as configured in Twilio (append ?bodySHA256=<hex> for a JSON body).
        #[arg(long)]
        public_url: Option<String>,
        /// The body to sign, exactly as it will be sent; - for standard input.
        file: PathBuf,
    },
    /// Exit 0 only if a webhook-listener answers its /healthz with "ok" (for a container
    /// HEALTHCHECK); non-zero when nothing answers, the answer is "degraded", or it is not ours.
    Healthcheck {
        /// The health URL to ask (http only; IPv6 as http://[::1]:8000/healthz). Default: /healthz
        /// at the address the server would listen on, from --listen, else --config, else the
        /// built-in default, with 0.0.0.0 and [::] asked on loopback. Wins over both (their
        /// environment variables may be set for the server).
        #[arg(long)]
        url: Option<String>,
        /// The server's config file: its `listen` is the address asked (secrets are not read).
        #[arg(long, short, env = "WEBHOOK_LISTENER_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// The address the server listens on, as given to the server's --listen.
        #[arg(long, env = "WEBHOOK_LISTENER_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Send a sink's dead letters, or the events of a JSON event log, to it again.
    ///
    /// With the same event ids and dedupe keys as the service, so it is safe beside a running
    /// server and twice. Exit 0 when all were delivered, 1 when any failed, did not parse or was
    /// left unsent, 2 when it could not start.
    Replay(crate::replay::ReplayArgs),
}

/// A value parser for one of strum's names: `--help` lists them and a typo is answered with them.
fn by_name<T>() -> impl TypedValueParser<Value = T>
where
    T: FromStr<Err = strum::ParseError> + VariantNames + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(T::VARIANTS).try_map(|s| s.parse::<T>())
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    return_freed_memory_promptly();
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::CheckConfig {
            file,
            syntax_only,
            connect,
        }) => crate::config::check::main(&file, syntax_only, connect),
        Some(Command::Sign {
            provider,
            secret,
            timestamp,
            id,
            header,
            algorithm,
            encoding,
            prefix,
            public_url,
            file,
        }) => {
            let scheme = match provider {
                Provider::Hmac => Scheme::Hmac {
                    header,
                    algorithm,
                    encoding,
                    prefix,
                    delivery_id_header: None,
                    event_header: None,
                },
                Provider::Twilio => Scheme::Twilio {
                    public_url: public_url.unwrap_or_default(),
                },
                p => Scheme::from_provider(p),
            };
            sign(&scheme, &secret, timestamp, id, file)
        }
        Some(Command::Healthcheck {
            url,
            config,
            listen,
            timeout,
        }) => match health_url(url, config, listen) {
            Ok(url) => healthcheck(&url, timeout),
            Err(e) => {
                eprintln!("healthcheck: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Replay(args)) => crate::replay::main(args),
    }
}

/// Serves until stopped. Every error is printed once, as a diagnostic, so `--log-format json`
/// output stays one JSON object per line.
fn serve(args: ServeArgs) -> ExitCode {
    let ServeArgs {
        config: config_path,
        listen,
        log_format,
    } = args;
    // First, while the process has one thread: listenfd removes LISTEN_FDS/LISTEN_PID from the
    // environment (so children do not inherit them), which is only sound before threads start.
    let (inherited, passed) = inherited_listener();
    diagnostics::init(log_format);
    if passed > 1 {
        tracing::warn!(
            passed,
            "several sockets passed in LISTEN_FDS; serving on the first only"
        );
    }
    let inherited = match inherited {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot use the listening socket passed in LISTEN_FDS: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            // One diagnostic per problem, so each stays one line (and one JSON object).
            for line in e.lines() {
                tracing::error!("{line}");
            }
            return ExitCode::FAILURE;
        }
    };
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    if let Some(addr) = listen {
        match addr.parse() {
            Ok(a) => config.listen = a,
            Err(_) => {
                tracing::error!("--listen {addr:?} is not an address like 127.0.0.1:8000");
                return ExitCode::FAILURE;
            }
        }
    }
    // Thousands of keep-alive connections need more descriptors than the usual soft limit of 1024.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-files limit");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(collect_when_idle)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let app = match App::build(config, config_path, inherited).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The first socket of systemd's socket activation (`LISTEN_FDS`, with `LISTEN_PID` naming this
/// process), if any was passed, and how many were passed.
fn inherited_listener() -> (std::io::Result<Option<std::net::TcpListener>>, usize) {
    let mut fds = listenfd::ListenFd::from_env();
    let passed = fds.len();
    if passed == 0 {
        return (Ok(None), 0);
    }
    (fds.take_tcp_listener(0), passed)
}

/// mimalloc's `mi_option_purge_delay` (the `mimalloc.h` enum, the same in v2 and v3; libmimalloc-sys
/// does not name it). A unit test checks it against the option's default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc give freed memory back to the OS at once. It purges lazily, on a later
/// allocation, `purge_delay` (1 s) after the free: once a flood of large bodies ends the process
/// goes quiet, nothing allocates, and the memory stayed resident (1.7 GB after 1,024 stalled 1 MB
/// bodies; tens of MB with 0, see README). `MIMALLOC_PURGE_DELAY` in the environment still wins.
/// Must run before any other thread exists: `mi_option_set` is not thread-safe. (Public for the
/// benches, which measure with the server's allocator settings.)
pub fn return_freed_memory_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain store into mimalloc's option table, index in range; single-threaded here.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

/// How often at most a worker thread about to sleep collects its mimalloc heap.
const COLLECT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Run by each runtime worker as it goes to sleep (nothing left to run): takes back the blocks
/// other threads freed into its heap (tokio moves tasks between workers, so a connection's buffers
/// are often freed on another thread) and returns empty pages to the OS. mimalloc does this only
/// when the owning thread allocates again, which an idle worker after a flood never does: the
/// memory stayed resident. At most once per [`COLLECT_INTERVAL`] per thread, so a busy worker that
/// parks thousands of times a second does not pay for it each time.
fn collect_when_idle() {
    use std::cell::Cell;
    use std::time::Instant;
    thread_local!(static LAST: Cell<Option<Instant>> = const { Cell::new(None) });
    let now = Instant::now();
    LAST.with(|last| {
        let due = match last.get() {
            None => true,
            Some(t) => now.duration_since(t) >= COLLECT_INTERVAL,
        };
        if due {
            last.set(Some(now));
            // SAFETY: collects the calling thread's own heap; no pointers are passed.
            unsafe { libmimalloc_sys::mi_collect(false) };
        }
    });
}

/// C0, DEL, C1, the Unicode line and paragraph separators and the bidi controls.
fn has_control(s: &str) -> bool {
    s.chars().any(crate::diagnostics::is_hostile)
}

fn sign(
    scheme: &Scheme,
    secret: &str,
    timestamp: Option<i64>,
    id: Option<String>,
    file: PathBuf,
) -> ExitCode {
    let secret = match resolve_secret(secret) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("--secret: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut body = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut body).map(|_| ())
    } else {
        std::fs::read(&file).map(|b| body = b)
    };
    if let Err(e) = read {
        eprintln!("cannot read {}: {e}", file.display());
        return ExitCode::FAILURE;
    }
    let ts = timestamp.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let id = id.unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
    match signature::sign(scheme, &secret, &body, ts, &id) {
        Ok(headers) => {
            // The lines go to curl as headers: a CR/LF (or any control) would add headers of its
            // own, and a terminal acts on the rest. Checked before anything is printed.
            if let Some((k, _)) = headers
                .iter()
                .find(|(k, v)| has_control(k) || has_control(v))
            {
                eprintln!(
                    "sign: the {} header would contain a control character (check --id, --header, --prefix); nothing printed",
                    k.escape_debug()
                );
                return ExitCode::FAILURE;
            }
            let mut out = String::new();
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\n"));
            }
            let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("--secret: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The URL `healthcheck` asks: `--url`, else `/healthz` at the address the server would listen on.
fn health_url(
    url: Option<String>,
    config: Option<PathBuf>,
    listen: Option<String>,
) -> Result<String, String> {
    if let Some(url) = url {
        return Ok(url);
    }
    let (text, from) = match (listen, config) {
        (Some(l), _) => (l, "--listen".to_owned()),
        (None, Some(path)) => {
            // Only `listen` is read: resolving secrets (or validating hooks) is not the health
            // check's business, and the file may name secrets this process cannot read.
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let table: toml::Table = text
                .parse()
                .map_err(|_| format!("{} is not valid TOML", path.display()))?;
            let listen = match table.get("listen") {
                None => crate::config::defaults::LISTEN.to_owned(),
                Some(toml::Value::String(s)) => s.clone(),
                Some(_) => return Err(format!("{}: listen is not a string", path.display())),
            };
            (listen, path.display().to_string())
        }
        (None, None) => (
            crate::config::defaults::LISTEN.to_owned(),
            "the built-in default".to_owned(),
        ),
    };
    let addr: std::net::SocketAddr = text
        .parse()
        .map_err(|_| format!("{from}: {text:?} is not an address like 127.0.0.1:8000"))?;
    Ok(format!("http://{}/healthz", loopback_if_unspecified(addr)))
}

/// A server on 0.0.0.0 or [::] is asked on the loopback address of the same family.
fn loopback_if_unspecified(mut addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    addr
}

fn healthcheck(url: &str, timeout: u64) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(timeout), health_get(url))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {timeout} s")))
    });
    match result.and_then(|body| judge_health(&body).map(|()| body)) {
        Ok(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("healthcheck {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Healthy only when the answer is ours (`"service": "webhook-listener"`) and says `ok`: another
/// program on the port, or a degraded event log, is not healthy.
fn judge_health(body: &str) -> Result<(), String> {
    let shown: String = body
        .chars()
        .take(512)
        .collect::<String>()
        .escape_debug()
        .to_string();
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return Err(format!(
            "the answer is not webhook-listener's (not JSON): {shown}"
        ));
    };
    if json.get("service").and_then(|s| s.as_str()) != Some(SERVICE) {
        return Err(format!("the answer is not webhook-listener's: {shown}"));
    }
    match json.get("result").and_then(|s| s.as_str()) {
        Some("ok") => Ok(()),
        Some("degraded") => Err(format!("degraded: {shown}")),
        _ => Err(format!("unexpected answer: {shown}")),
    }
}

const HEALTH_BODY_CAP: usize = 64 * 1024;

async fn health_get(url: &str) -> Result<String, String> {
    use http_body_util::BodyExt;
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// URLs are supported".into());
    }
    let host = uri.host().ok_or("URL has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    // `http://[::1]:8000/`: the URI keeps the brackets, which connect must not see but Host keeps.
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let stream = tokio::net::TcpStream::connect((bare, port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .header(http::header::HOST, format!("{host}:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    // A health answer is a few hundred bytes; whatever answers must not make us buffer without end.
    let body = http_body_util::Limited::new(resp.into_body(), HEALTH_BODY_CAP)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("status {status}: {body}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_index_names_purge_delay() {
        // The only option whose default is 1000 (ms) in mimalloc v3; a shifted enum would read
        // another option's default here.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads mimalloc's option table.
            let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
            assert_eq!(v, 1000);
        }
    }

    use clap::CommandFactory;

    use super::*;
    use crate::config::{defaults, EMBEDDED_DEFAULT};

    #[test]
    fn a_header_with_a_bidi_control_counts_as_a_control() {
        assert!(has_control("a\u{202e}b") && has_control("\u{2069}") && has_control("\n"));
        assert!(!has_control("X-Hook-Signature") && !has_control("café"));
    }

    /// `--help` describes the embedded default in words; it must name the address the code uses.
    #[test]
    fn config_help_names_the_default_listen_address() {
        let cmd = Cli::command();
        let config = cmd
            .get_arguments()
            .find(|a| a.get_id() == "config")
            .unwrap();
        let help = config.get_help().unwrap().to_string();
        assert!(help.contains(defaults::LISTEN), "{help}");
        let embedded = Config::from_toml(
            &EMBEDDED_DEFAULT.replace("env:WEBHOOK_SECRET", "literal:x"),
            "embedded",
        )
        .unwrap();
        assert_eq!(embedded.listen.to_string(), defaults::LISTEN);
        assert!(help.contains(&embedded.hooks[0].path), "{help}");
    }
}
