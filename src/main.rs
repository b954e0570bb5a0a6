//! The `webhook-listener` binary; everything lives in the library so tests can drive it.

fn main() -> std::process::ExitCode {
    webhook_listener::cli::main()
}
