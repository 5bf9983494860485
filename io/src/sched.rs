//! The process's CPU scheduling, as conntrackd's `Scheduler { Type; Priority }` sets it (a
//! sync daemon under real-time scheduling reads its events before other work): the policy
//! and priority of the calling thread, which is the whole process when it has one thread.
//! The unsafe calls behind them live in the crate's one unsafe module.

use std::io;

use nix::libc;

use crate::sys;

/// A scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `SCHED_OTHER`: the normal time-sharing policy (priority 0).
    Other,
    /// `SCHED_FIFO`: real-time, first in first out (priority 1 to 99).
    Fifo,
    /// `SCHED_RR`: real-time, round robin (priority 1 to 99); conntrackd's default, at 99.
    RoundRobin,
}

impl Policy {
    fn number(self) -> i32 {
        match self {
            Policy::Other => libc::SCHED_OTHER,
            Policy::Fifo => libc::SCHED_FIFO,
            Policy::RoundRobin => libc::SCHED_RR,
        }
    }
}

/// Puts the calling thread under `policy` at `priority`.
///
/// # Errors
/// `EPERM` without `CAP_SYS_NICE` (for a real-time policy), `EINVAL` for a priority the
/// policy does not take.
pub fn set_scheduler(policy: Policy, priority: i32) -> io::Result<()> {
    sys::set_scheduler(policy.number(), priority)
        .map_err(|e| io::Error::from_raw_os_error(e as i32))
}

/// The calling thread's policy (`None` for one this enum does not name, such as
/// `SCHED_BATCH`) and priority.
///
/// # Errors
/// None expected on Linux; the kernel's error otherwise.
pub fn scheduler() -> io::Result<(Option<Policy>, i32)> {
    let (p, prio) = sys::scheduler().map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    let policy = [Policy::Other, Policy::Fifo, Policy::RoundRobin]
        .into_iter()
        .find(|x| x.number() == p);
    Ok((policy, prio))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_takes_a_policy_and_leaves_it() {
        std::thread::spawn(|| {
            assert_eq!(scheduler().unwrap(), (Some(Policy::Other), 0));
            match set_scheduler(Policy::RoundRobin, 10) {
                Ok(()) => {
                    assert_eq!(scheduler().unwrap(), (Some(Policy::RoundRobin), 10));
                    set_scheduler(Policy::Other, 0).unwrap();
                    assert_eq!(scheduler().unwrap(), (Some(Policy::Other), 0));
                }
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    println!("SKIPPED the real-time part: no CAP_SYS_NICE here ({e})");
                }
                Err(e) => panic!("{e}"),
            }
            let e = set_scheduler(Policy::Other, 5).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        })
        .join()
        .unwrap();
    }
}
