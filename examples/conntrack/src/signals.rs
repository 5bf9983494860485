//! SIGINT and SIGTERM, caught the way a program that must finish what it is doing needs
//! them: blocked in every thread, and waited for (`sigwait`) on a thread of their own, which
//! then runs the program's reaction. No signal handler runs, so the reaction can take locks,
//! allocate and print like any other code.
//!
//! `conntrack -E` and `ctevents` end on them (footer, summary, exit status 0, as 1.4.7's
//! handler does); `conntrack -D` and `-U` finish the requests already sent, print what was
//! done, and then die of the signal, as 1.4.7 does (it has no handler there).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

/// The signals that stop the program.
fn stop_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// Blocks SIGINT and SIGTERM in the calling thread (threads started later inherit that) and
/// starts a thread that waits for the first of them and calls `react` with it.
///
/// Call it before starting any other thread, or those may still receive the signals.
///
/// # Errors
/// The errno of `pthread_sigmask`, or of starting the thread (then the signals are unblocked
/// again and keep their default action).
pub fn on_stop<F>(react: F) -> std::io::Result<()>
where
    F: FnOnce(Signal) + Send + 'static,
{
    let set = stop_set();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(signal) = set.wait() {
                react(signal);
            }
        });
    if let Err(e) = spawned {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        return Err(e);
    }
    Ok(())
}

/// Gives SIGPIPE back its default action (Rust's runtime ignores it): a program whose
/// reader went away dies of it, as a C program does, instead of failing its writes.
#[allow(unsafe_code)]
pub fn default_sigpipe() {
    // SAFETY: `SigDfl` installs no handler code; nothing runs in signal context.
    let _ =
        unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) };
}

/// A stop request that a loop polls: the number of the signal that arrived, 0 while none has.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicI32>);

impl StopFlag {
    /// Catches SIGINT and SIGTERM into a new flag (see [`on_stop`]).
    ///
    /// # Errors
    /// As [`on_stop`].
    pub fn catch() -> std::io::Result<StopFlag> {
        let flag = StopFlag::default();
        let seen = Arc::clone(&flag.0);
        on_stop(move |signal| seen.store(signal as i32, Ordering::SeqCst))?;
        Ok(flag)
    }

    /// The signal that arrived, if one did.
    pub fn signal(&self) -> Option<Signal> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => Signal::try_from(n).ok(),
        }
    }

    /// Raises a stop by hand (what the signal thread does when a signal arrives).
    pub fn raise(&self, signal: Signal) {
        self.0.store(signal as i32, Ordering::SeqCst);
    }
}

/// Ends the process with `signal`'s default action (termination, reported to the parent as
/// death by that signal), as a program without a handler for it would have ended.
pub fn die_of(signal: Signal) -> ! {
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = nix::sys::signal::raise(signal);
    // Only reached if the signal's action is not the default one (it was set to ignore).
    std::process::exit(128 + signal as i32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_says_which_signal_arrived() {
        let flag = StopFlag::default();
        assert_eq!(flag.signal(), None);
        flag.clone().raise(Signal::SIGTERM);
        assert_eq!(flag.signal(), Some(Signal::SIGTERM));
    }
}
