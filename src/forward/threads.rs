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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = workers(cores);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("forward")
        .enable_all()
        .on_thread_start(move || lower_priority(nice))
        .build()
}

/// One worker per four cores, at least one and at most four. A sink's work is a stream of small
/// hand-offs (runner, client connection task, spool reader); with two workers on two cores each
/// hand-off tended to wake the parked one. Measured on 2 cores, NATS and Redis sinks, 10 s burst
/// then drain (8 runs): 10.7 µs of our CPU per event instead of 12.6, a third fewer context
/// switches, and the CPU left to the brokers. One worker used about 40 % of a core there.
fn workers(cores: usize) -> usize {
    (cores / 4).clamp(1, 4)
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

#[cfg(test)]
mod tests {
    use super::workers;

    #[test]
    fn one_worker_per_four_cores_between_one_and_four() {
        assert_eq!(workers(1), 1);
        assert_eq!(workers(2), 1);
        assert_eq!(workers(7), 1);
        assert_eq!(workers(8), 2);
        assert_eq!(workers(16), 4);
        assert_eq!(workers(64), 4);
    }
}
