//! Where forwarding runs: its own small tokio runtime whose threads run at a lower CPU priority
//! (a higher nice value) than intake's. Under a flood that fills the CPU, intake keeps it: events
//! wait in the spool (durable, acknowledged) and the sinks catch up once the flood ends, instead
//! of delivering and taking CPU from the requests still arriving. Idle CPU is used at once, so
//! below saturation nothing changes. Threads started from these (the spool readers, blocking
//! tasks) inherit the priority.

use std::io;

use tokio::runtime::Runtime;

/// Forwarding's nice value above the process's. 10 gives its threads about a tenth of intake's
/// weight when both want the CPU: enough to keep draining under a long flood, little enough that a
/// request's threads win the CPU when they wake.
pub const FORWARD_NICE: i32 = 10;

/// The runtime every sink's runner and client lives on. `nice`: added to the process's own; 0
/// keeps forwarding at intake's priority.
pub fn runtime(nice: i32) -> io::Result<Runtime> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("forward")
        .enable_all()
        .on_thread_start(move || lower_priority(nice))
        .build()
}

/// Lowers the calling thread's priority by `nice` (Linux keeps a nice value per thread, and a
/// thread inherits its creator's). Failure is reported and otherwise harmless: only the priority
/// is lost.
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    let tid = rustix::thread::gettid();
    let result = rustix::process::getpriority_process(Some(tid))
        .and_then(|now| rustix::process::setpriority_process(Some(tid), now + nice));
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot lower the forwarding threads' priority");
    }
}
