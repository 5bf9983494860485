//! `conntrackd`: conntrackd 1.4.7's command line, configuration file, logging, lock file,
//! daemon mode and UNIX control socket (see the library's documentation for the parts).
//!
//! ```text
//! conntrackd -C /etc/conntrackd/conntrackd.conf -d     # the daemon, in the background
//! conntrackd -C /etc/conntrackd/conntrackd.conf -i     # its internal cache
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use conntrackd::config;
use conntrackd::daemon::{self, Daemon, Plumbing};
use conntrackd::engine::{Engine, KernelCache};
use conntrackd::front::{front, request, Console, Env, Next};
use conntrackd::log::{Logger, Priority};
use conntrackd::sync::SyncEngine;
use conntrackd::text::Runtime;

/// The console before logging is set up: stdout for text, the logger for lines.
struct Con<'a>(&'a mut Logger);

impl Console for Con<'_> {
    fn out(&mut self, s: &str) {
        print_out(s);
    }
    fn log(&mut self, p: Priority, msg: &str) {
        self.0.log(p, msg);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut log = Logger::console();
    let read = |p: &str| std::fs::read(p);
    let env = Env {
        read: &read,
        iface: &conntrackd::if_index,
        protocol: &conntrackd::protocol_number,
    };
    // 1.4.7 sets its umask before it reads the configuration.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    match front(&args, &mut Con(&mut log), &env) {
        Next::Exit(code) => ExitCode::from(code),
        Next::Request(path, action) => {
            let mut send = |p: &std::path::Path, a| {
                let mut out = std::io::stdout().lock();
                conntrackd::local::request(p, a, &mut out)
            };
            ExitCode::from(request(&path, action, &mut Con(&mut log), &mut send))
        }
        Next::Daemon(background, conf) => run_daemon(background, *conf, log),
    }
}

fn print_out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn cannot_start(log: &mut Logger, lockfile: &std::path::Path) -> ExitCode {
    log.log(
        Priority::Error,
        "conntrackd cannot start, please review your configuration",
    );
    log.close();
    let _ = std::fs::remove_file(lockfile);
    ExitCode::from(1)
}

/// Points a standard descriptor at /dev/null (1.4.7 closes them; this keeps later sockets
/// from taking their numbers).
fn to_dev_null(fd: i32) {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = match fd {
            0 => nix::unistd::dup2_stdin(&null),
            1 => nix::unistd::dup2_stdout(&null),
            _ => nix::unistd::dup2_stderr(&null),
        };
    }
}

fn run_daemon(background: bool, conf: config::Config, mut log: Logger) -> ExitCode {
    let g = &conf.general;
    // With -d, 1.4.7 logs to the console only until logging is set up, even before it
    // forks (a refused lock file is only in the log file).
    if background {
        log.set_background();
    }
    if let Err(msg) = log.init(g.logfile.as_deref(), g.syslog) {
        eprintln!("{msg}");
        return ExitCode::from(1);
    }
    let lockfile = g.lockfile.clone();
    if let Err(msg) = daemon::lock(&lockfile) {
        log.log(Priority::Error, &msg);
        return ExitCode::from(1);
    }
    // As 1.4.7: real-time scheduling (SCHED_RR at the top priority unless `Scheduler` says
    // otherwise); a refusal is logged and the daemon goes on.
    let (policy, priority) = daemon::scheduling(&g.scheduler);
    if let Err(e) = conntrack_io::sched::set_scheduler(policy, priority) {
        let why = conntrack_io::strerror(e.raw_os_error().unwrap_or(0));
        log.log(
            Priority::Warning,
            &format!(
                "scheduler configuration failed: {why}. Likely a bug in conntrackd, please report it. Continuing with system default scheduler."
            ),
        );
    }
    // init(): the control socket, signals, the engine.
    let socket_path: PathBuf = g.unix_path.clone();
    let listener = match conntrackd::local::listen(&socket_path) {
        Ok(l) => l,
        Err(_) => {
            log.log(Priority::Error, "can't open unix socket!");
            return cannot_start(&mut log, &lockfile);
        }
    };
    let Ok(signals) = daemon::signals() else {
        return cannot_start(&mut log, &lockfile);
    };
    for what in conf.not_implemented() {
        log.log(
            Priority::Warning,
            &format!("{what}: parsed but not implemented by this conntrackd yet, ignoring"),
        );
    }
    let mut rt = Runtime::default();
    let engine: Option<Box<dyn Engine>> = if conf.sync.is_some() {
        match SyncEngine::start(&conf, &mut log, &mut rt) {
            Ok(e) => Some(Box::new(e)),
            Err(e) => {
                // As 1.4.7 says when a dedicated link cannot be opened.
                log.log(Priority::Error, &format!("can't open channel socket: {e}"));
                log.log(Priority::Error, "initialization failed");
                let _ = std::fs::remove_file(&socket_path);
                return cannot_start(&mut log, &lockfile);
            }
        }
    } else if conf.stats.is_some() {
        match KernelCache::start(&conf, &mut log, &mut rt) {
            Ok(e) => Some(Box::new(e)),
            Err(e) => {
                log.log(Priority::Error, &format!("can't open netlink handler: {e}"));
                let _ = std::fs::remove_file(&socket_path);
                return cannot_start(&mut log, &lockfile);
            }
        }
    } else {
        None
    };
    rt.start = conntrackd::now_secs();
    log.log(Priority::Notice, "initialization completed");

    let _ = std::env::set_current_dir("/");
    to_dev_null(0);
    if background {
        // SAFETY: the program is single-threaded here; the child only goes on running Rust
        // code it owns, as after any fork of a single-threaded process.
        match unsafe { nix::unistd::fork() } {
            Err(e) => {
                log.log(Priority::Error, &format!("fork has failed: {}", e.desc()));
                log.close();
                let _ = std::fs::remove_file(&lockfile);
                return ExitCode::from(1);
            }
            Ok(nix::unistd::ForkResult::Parent { .. }) => return ExitCode::SUCCESS,
            Ok(nix::unistd::ForkResult::Child) => {}
        }
        let _ = nix::unistd::setsid();
        to_dev_null(1);
        to_dev_null(2);
        log.log(Priority::Notice, "-- starting in daemon mode --");
    } else {
        log.log(Priority::Notice, "-- starting in console mode --");
    }
    let plumbing = Plumbing {
        listener,
        socket_path,
        signals,
        lockfile,
    };
    let mut d = Daemon {
        conf,
        log,
        engine,
        rt,
        purge_at: None,
    };
    daemon::run(&mut d, &plumbing);
    ExitCode::SUCCESS
}
