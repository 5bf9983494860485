//! Everything the program does before it becomes a daemon: the command line, the
//! configuration file, and a client request — with the process's edges (console, files,
//! the socket) passed in, so the golden files recorded from 1.4.7 check it without root.

use std::io;
use std::path::Path;

use crate::action::Action;
use crate::cli::{self, End, Mode, Say};
use crate::config::{self, Config};
use crate::log::Priority;

/// Where the front end prints.
pub trait Console {
    /// Text on stdout.
    fn out(&mut self, s: &str);
    /// A log line (before logging is set up: the console).
    fn log(&mut self, p: Priority, msg: &str);
}

/// The world the front end reads.
pub struct Env<'a> {
    /// Reads the configuration file.
    pub read: &'a dyn Fn(&str) -> io::Result<Vec<u8>>,
    /// `if_nametoindex`.
    pub iface: &'a dyn Fn(&str) -> Option<u32>,
    /// `getprotobyname`.
    pub protocol: &'a dyn Fn(&str) -> Option<u8>,
}

/// What comes after the front end.
#[derive(Debug)]
pub enum Next {
    /// Exit with this status.
    Exit(u8),
    /// Send this request to the daemon listening at the path.
    Request(std::path::PathBuf, Option<Action>),
    /// Run the daemon (in the background when `true`).
    Daemon(bool, Box<Config>),
}

/// Reads the command line and the configuration as 1.4.7 does.
pub fn front(args: &[String], con: &mut dyn Console, env: &Env<'_>) -> Next {
    let progname = args.first().map_or("conntrackd", String::as_str);
    let parsed = cli::parse(args);
    for s in &parsed.said {
        match s {
            Say::Usage => con.out(&cli::usage(progname)),
            Say::Version => con.out(&cli::version()),
            Say::Log(p, m) => con.log(*p, m),
        }
    }
    let a = match parsed.end {
        End::Exit(code) => return Next::Exit(code),
        End::Go(a) => a,
    };
    let Ok(src) = (env.read)(&a.config) else {
        con.log(
            Priority::Error,
            &format!("can't open config file `{}'", a.config),
        );
        return Next::Exit(1);
    };
    let loaded = config::parse(&src, env.iface, env.protocol);
    for (p, m) in &loaded.said {
        con.log(*p, m);
    }
    let Some(conf) = loaded.config else {
        return Next::Exit(1);
    };
    match a.mode {
        Mode::Request(action) => Next::Request(conf.general.unix_path.clone(), action),
        Mode::Daemon => Next::Daemon(true, Box::new(conf)),
        Mode::Console => Next::Daemon(false, Box::new(conf)),
    }
}

/// Sends a request and says what 1.4.7 says when it cannot: the exit status.
pub fn request(
    path: &Path,
    action: Option<Action>,
    con: &mut dyn Console,
    send: &mut dyn FnMut(&Path, Option<Action>) -> io::Result<()>,
) -> u8 {
    match send(path, action) {
        Ok(()) => 0,
        Err(_) => {
            con.log(
                Priority::Error,
                "can't connect: is conntrackd running? appropriate permissions?",
            );
            1
        }
    }
}
