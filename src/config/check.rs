//! `check-config`: load a file the way the server would (or, with `--syntax-only`, without
//! anything from this machine), check that the event log can be written where it is configured,
//! print every problem found, or a summary of what would run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{AllowedHost, Config, Fault, Mode};
use crate::event_log::LogFormat;

/// Runs `check-config FILE [--syntax-only]`: the summary on stdout and 0, or one line per problem
/// on stderr and 1.
pub fn main(file: &Path, syntax_only: bool, connect: bool) -> ExitCode {
    let mode = if syntax_only {
        Mode::SyntaxOnly
    } else {
        Mode::Check
    };
    match Config::load_as(Some(file), mode) {
        Ok(config) => {
            let mut out = summary(file, &config, mode);
            let ok = !connect || connect_sinks(&config, &mut out);
            // Written at once and without panicking: `check-config … | head` must not print a backtrace.
            let _ = std::io::stdout().write_all(out.as_bytes());
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            let mut out = String::new();
            for line in e.lines() {
                let _ = writeln!(out, "{line}");
            }
            let n = e.problems().len();
            if n > 1 {
                let _ = writeln!(out, "{}: {n} problems", file.display());
            }
            let _ = std::io::stderr().write_all(out.as_bytes());
            ExitCode::FAILURE
        }
    }
}

/// `--connect`: reaches every sink's broker once (all at once), appending one line per sink; false
/// when any could not be reached.
fn connect_sinks(config: &Config, out: &mut String) -> bool {
    if config.sinks.is_empty() {
        return true;
    }
    let checked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| {
            rt.block_on(futures_util::future::join_all(
                config.sinks.iter().map(crate::forward::service::check),
            ))
        });
    match checked {
        Ok(results) => {
            let mut ok = true;
            for (s, r) in config.sinks.iter().zip(results) {
                ok &= r.is_ok();
                let _ = match r {
                    Ok(found) => writeln!(out, "connect {}: OK: {found}", s.name),
                    Err(e) => writeln!(out, "connect {}: FAILED: {e}", s.name),
                };
            }
            ok
        }
        Err(e) => {
            let _ = writeln!(out, "connect: cannot start a runtime: {e}");
            false
        }
    }
}

/// Whether the event log can be opened for appending where configured, as the server will: its
/// directory exists and this user can create files in it (a probe file, created and removed), and
/// the log, if it exists, is a regular file this user can append to.
pub(super) fn log_path(file: &Path) -> Result<(), Fault> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Fault::LogDirNotDir(dir)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Fault::LogDirMissing(dir))
        }
        // A component of the path is a file.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
            return Err(Fault::LogDirNotDir(dir))
        }
        Err(source) => return Err(Fault::LogUncheckable { path: dir, source }),
    }
    let probe = dir.join(format!(
        ".webhook-listener-check-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
    ));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(f) => {
            drop(f);
            let _ = std::fs::remove_file(&probe);
        }
        Err(source) => return Err(Fault::LogDirNotWritable { dir, source }),
    }
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Fault::LogUncheckable {
            path: file.to_path_buf(),
            source,
        }),
        Ok(m) if !m.is_file() => Err(Fault::LogNotFile {
            path: file.to_path_buf(),
            what: kind_of(&m),
        }),
        // A regular file: opening it cannot block, and appending nothing changes nothing.
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .map(drop)
            .map_err(|source| Fault::LogUncheckable {
                path: file.to_path_buf(),
                source,
            }),
    }
}

fn kind_of(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "something else"
    }
}

/// What `check-config` prints: every setting that matters, never a secret.
/// The `Host` names the admin listener answers to, as the summary shows them.
fn admin_hosts(allowed: &[AllowedHost]) -> String {
    let mut text = String::from("localhost/loopback/listen address");
    for a in allowed {
        match a {
            AllowedHost::Any => return "any (no Host check)".into(),
            AllowedHost::Name(n) => {
                text.push_str(", ");
                text.push_str(n);
            }
        }
    }
    text
}

fn summary(file: &Path, config: &Config, mode: Mode) -> String {
    let mut out = String::new();
    let note = if mode == Mode::SyntaxOnly {
        " (syntax only: env:/file: secrets and the log directory not checked)"
    } else {
        ""
    };
    let _ = writeln!(out, "{}: OK{note}", file.display());
    let _ = writeln!(
        out,
        "listen {}  max_body_bytes {}  max_buffered_bytes {}  request_timeout {} s  max_concurrent_requests {}",
        config.listen,
        config.max_body_bytes,
        config.max_buffered_bytes,
        config.request_timeout.as_secs(),
        config.max_concurrent_requests
    );
    let _ = writeln!(
        out,
        "log {} (format {}, fsync {})",
        config.log.file.display(),
        match config.log.format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        },
        if config.log.fsync { "on" } else { "off" }
    );
    if config.trusted_proxies.is_empty() {
        let _ = writeln!(
            out,
            "trusted_proxies none (forwarding headers are never read; the client is the peer)"
        );
    } else {
        let proxies: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        let _ = writeln!(out, "trusted_proxies {}", proxies.join(", "));
    }
    let _ = writeln!(out, "client_ip_header {}", config.client_ip_header.name());
    let _ = match config.admin.listen {
        None => writeln!(
            out,
            "admin off (nothing recorded; /metrics {})",
            if config.admin.public_metrics {
                "on the public port"
            } else {
                "not served"
            }
        ),
        Some(addr) => writeln!(
            out,
            "admin {addr} (token {}, recent {}, /metrics {}, hosts {})",
            if config.admin.token.is_some() {
                "set"
            } else {
                "none: loopback only"
            },
            config.admin.recent,
            if config.admin.public_metrics {
                "here and on the public port"
            } else {
                "here only"
            },
            admin_hosts(&config.admin.allowed_hosts),
        ),
    };
    for w in config.warnings() {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(out, "{} hook(s):", config.hooks.len());
    for h in &config.hooks {
        let allow = if h.allow_ips.is_empty() {
            "any".to_string()
        } else {
            let nets: Vec<String> = h.allow_ips.iter().map(|n| n.to_string()).collect();
            nets.join(",")
        };
        let unresolved = if h.unresolved_secrets.is_empty() {
            String::new()
        } else {
            format!(
                " (+{} not resolved: {})",
                h.unresolved_secrets.len(),
                h.unresolved_secrets.join(", ")
            )
        };
        let public_keys = match h.verifier.public_key_count() {
            0 => String::new(),
            n => format!(" public_keys={n}"),
        };
        let _ = writeln!(
            out,
            "  {:<24} provider={:<17} payload={} secrets={}{unresolved}{public_keys} allow_ips={allow}{}",
            h.path,
            h.verifier.scheme().provider().name(),
            format!("{:?}", h.payload).to_lowercase(),
            h.verifier.key_count(),
            if h.verifier.allows_unsigned() {
                " UNSIGNED REQUESTS ACCEPTED"
            } else {
                ""
            },
        );
    }
    if !config.sinks.is_empty() {
        let _ = writeln!(
            out,
            "spool {} (max_bytes {}, segment_bytes {})",
            config.spool.dir.display(),
            config.spool.max_bytes,
            config.spool.segment_bytes
        );
        let _ = writeln!(out, "{} sink(s):", config.sinks.len());
        for s in &config.sinks {
            let _ = writeln!(out, "  {}", crate::forward::service::describe(s));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_path_is_checked_where_the_server_will_open_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(log_path(&dir.path().join("events.log")).is_ok());
        // The probe leaves nothing behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("nope/events.log");
        assert!(matches!(log_path(&missing), Err(Fault::LogDirMissing(_))));
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(matches!(
            log_path(&plain.join("events.log")),
            Err(Fault::LogDirNotDir(_))
        ));
        assert!(matches!(
            log_path(dir.path()),
            Err(Fault::LogNotFile {
                what: "a directory",
                ..
            })
        ));
    }
}
