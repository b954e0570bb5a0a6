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

/// The runtime every sink's runner and client lives on. `nice`: added to the calling thread's
/// (intake's); 0 keeps forwarding at intake's priority. The target is fixed here, not relative to
/// the starting thread: tokio starts blocking-pool threads from the forward workers, which already
/// carry the lower priority, and adding to theirs put those threads at 19 instead of 10.
pub fn runtime(nice: i32) -> io::Result<Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = workers(cores);
    let target = (nice != 0)
        .then(|| current_nice().map(|base| base + nice))
        .transpose()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read intake's priority; forwarding keeps it");
            None
        });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("forward")
        .enable_all()
        .on_thread_start(move || {
            if let Some(target) = target {
                set_priority(target);
            }
        })
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

/// The calling thread's nice value (Linux keeps one per thread, and a thread inherits its
/// creator's).
fn current_nice() -> io::Result<i32> {
    Ok(rustix::process::getpriority_process(Some(
        rustix::thread::gettid(),
    ))?)
}

/// Sets the calling thread's nice value (the kernel caps it at 19). Failure is reported and
/// otherwise harmless: only the priority is lost.
fn set_priority(nice: i32) {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(error = %e, "cannot lower the forwarding threads' priority");
    }
}

#[cfg(test)]
mod tests {
    use super::{current_nice, runtime, workers};

    /// Worker threads and the blocking threads they start both sit `nice` above the caller: the
    /// blocking pool must not add the difference a second time.
    #[test]
    fn workers_and_blocking_threads_get_the_same_priority() {
        let base = current_nice().expect("read this thread's nice value");
        let want = (base + 5).min(19);
        let rt = runtime(5).expect("build the forwarding runtime");
        let (worker, blocking) = rt.block_on(async {
            let worker = tokio::spawn(async { current_nice().expect("worker's nice") })
                .await
                .expect("worker task");
            let blocking = tokio::spawn(async {
                tokio::task::spawn_blocking(|| current_nice().expect("blocking thread's nice"))
                    .await
                    .expect("blocking task")
            })
            .await
            .expect("spawning task");
            (worker, blocking)
        });
        assert_eq!(worker, want);
        assert_eq!(blocking, want);
        assert_eq!(
            current_nice().expect("caller's nice"),
            base,
            "the caller keeps its own"
        );
    }

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
