//! The command line, read exactly as conntrackd 1.4.7 reads it (`src/main.c`).
//!
//! 1.4.7 has no getopt: it walks the arguments and switches on the *second* character of
//! each (`-dx` is `-d`, `x` alone is an unknown option). Table arguments (`ct`, `expect`,
//! `internal`, `network`, ...) are taken when the next argument does not start with `-`
//! and is a prefix of the word (the empty string is a prefix of every word). What it
//! prints, and when it stops, is kept: the usage on stdout, messages through its logger
//! (errors on stderr), exit status 1 for conflicting commands, and 0 — with nothing done —
//! for an unknown option.

use crate::action::Action;
use crate::log::Priority;

/// The program's version, as 1.4.7 prints it.
pub const VERSION: &str = "1.4.7";

/// The configuration file when `-C` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/conntrackd/conntrackd.conf";

const USAGE_GENERAL: &str = concat!(
    "General commands:\n",
    "  -d, run in daemon mode\n",
    "  -C [configfile], configuration file path\n",
    "  -v, display conntrackd version\n",
    "  -h, display this help information\n",
);

const USAGE_CLIENT: &str = concat!(
    "Client mode commands:\n",
    "  -c [ct|expect], commit external cache to conntrack table\n",
    "  -f [internal|external], flush internal and external cache\n",
    "  -F [ct|expect], flush kernel conntrack table\n",
    "  -i [ct|expect], display content of the internal cache\n",
    "  -e [ct|expect], display the content of the external cache\n",
    "  -k, kill conntrack daemon\n",
    "  -s  [network|cache|runtime|link|rsqueue|queue|ct|expect], dump statistics\n",
    "  -R [ct|expect], resync with kernel conntrack table\n",
    "  -n, request resync with other node (only FT-FW and NOTRACK modes)\n",
    "  -B, force a bulk send to other replica firewalls\n",
    "  -x, dump cache in XML format (requires -i or -e)\n",
    "  -t, reset the kernel timeout (see PurgeTimeout clause)\n",
);

/// The usage text, with `progname` as the program was invoked (`argv[0]`).
pub fn usage(progname: &str) -> String {
    format!(
        "Connection tracking userspace daemon v{VERSION}\nUsage: {progname} [commands] [options]\n\n{USAGE_GENERAL}\n{USAGE_CLIENT}\n"
    )
}

/// The text of `-v`.
pub fn version() -> String {
    format!(
        "Connection tracking userspace daemon v{VERSION}. Licensed under GPLv2.\n\
         (C) 2006-2009 Pablo Neira Ayuso <pablo@netfilter.org>\n"
    )
}

/// How the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No command: the daemon in the foreground ("console mode").
    Console,
    /// `-d`: the daemon in the background.
    Daemon,
    /// A client command: one request to the running daemon (`None`: 1.4.7's "no action"
    /// value, -1, sent when a table argument matched nothing, e.g. `-i zC`).
    Request(Option<Action>),
}

/// What the command line asks for, once it was read to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// Daemon, console or client.
    pub mode: Mode,
    /// `-C FILE`, or the default path.
    pub config: String,
}

/// Something the command line reading prints before it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Say {
    /// The usage text on stdout.
    Usage,
    /// The version text on stdout.
    Version,
    /// A line through the logger (the console, since logging is not set up yet).
    Log(Priority, String),
}

/// How reading the command line ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Stop with this exit status.
    Exit(u8),
    /// Go on with these arguments.
    Go(Args),
}

/// The result of reading the command line: what to print, then what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// In order.
    pub said: Vec<Say>,
    /// Exit or go on.
    pub end: End,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    NotSet,
    Daemon,
    Request,
}

/// `strncmp(arg, word, strlen(arg)) == 0`: `arg` is a prefix of `word`.
fn prefix_of(arg: &str, word: &str) -> bool {
    word.as_bytes().starts_with(arg.as_bytes())
}

/// The next argument, when it is there and does not start with `-`.
fn table_arg(args: &[String], i: usize) -> Option<&str> {
    args.get(i + 1)
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
}

struct State {
    said: Vec<Say>,
    ty: Type,
    action: Option<Action>,
}

impl State {
    fn log(&mut self, p: Priority, msg: String) {
        self.said.push(Say::Log(p, msg));
    }

    /// `set_operation_mode`: a second, different mode is an error (usage, exit 1).
    fn mode(&mut self, want: Type) -> Result<(), u8> {
        if self.ty == Type::NotSet || self.ty == want {
            self.ty = want;
            return Ok(());
        }
        self.said.push(Say::Usage);
        self.log(Priority::Error, "Invalid parameters".into());
        Err(1)
    }

    /// `set_action_by_table`: `ct`/`expect` after the option, or the default when no
    /// table argument follows; an argument that is neither leaves the action as it was.
    fn by_table(&mut self, args: &[String], i: &mut usize, ct: Action, exp: Action, dfl: Action) {
        match table_arg(args, *i) {
            Some(a) if prefix_of(a, "ct") => {
                self.action = Some(ct);
                *i += 1;
            }
            Some(a) if prefix_of(a, "expect") => {
                self.action = Some(exp);
                *i += 1;
            }
            Some(_) => {}
            None => self.action = Some(dfl),
        }
    }
}

/// The words `-s` takes, in the order 1.4.7 tries them.
const STATS_WORDS: [(&str, Action); 10] = [
    ("network", Action::StatsNetwork),
    ("cache", Action::StatsCache),
    ("runtime", Action::StatsRuntime),
    ("multicast", Action::StatsLink),
    ("link", Action::StatsLink),
    ("rsqueue", Action::StatsRsqueue),
    ("process", Action::StatsProcess),
    ("queue", Action::StatsQueue),
    ("ct", Action::Stats),
    ("expect", Action::ExpStats),
];

/// Reads the command line (`args[0]` is the program name) as conntrackd 1.4.7 does.
pub fn parse(args: &[String]) -> Parsed {
    let mut st = State {
        said: Vec::new(),
        ty: Type::NotSet,
        action: None,
    };
    let mut config: Option<String> = None;
    match walk(args, &mut st, &mut config) {
        Ok(()) => {}
        Err(code) => {
            return Parsed {
                said: st.said,
                end: End::Exit(code),
            }
        }
    }
    let mode = match (st.ty, st.action) {
        (Type::Request, a) => Mode::Request(a),
        (Type::Daemon, _) => Mode::Daemon,
        (Type::NotSet, _) => Mode::Console,
    };
    Parsed {
        said: st.said,
        end: End::Go(Args {
            mode,
            config: config.unwrap_or_else(|| DEFAULT_CONFIG.to_string()),
        }),
    }
}

fn walk(args: &[String], st: &mut State, config: &mut Option<String>) -> Result<(), u8> {
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        let opt = arg.as_bytes().get(1).copied().unwrap_or(0);
        match opt {
            b'd' => st.mode(Type::Daemon)?,
            b'c' => {
                st.mode(Type::Request)?;
                st.by_table(
                    args,
                    &mut i,
                    Action::CtCommit,
                    Action::ExpCommit,
                    Action::AllCommit,
                );
            }
            b'i' => {
                st.mode(Type::Request)?;
                st.by_table(
                    args,
                    &mut i,
                    Action::CtDumpInternal,
                    Action::ExpDumpInternal,
                    Action::CtDumpInternal,
                );
            }
            b'e' => {
                st.mode(Type::Request)?;
                st.by_table(
                    args,
                    &mut i,
                    Action::CtDumpExternal,
                    Action::ExpDumpExternal,
                    Action::CtDumpExternal,
                );
            }
            b'C' => {
                if i + 1 < args.len() {
                    i += 1;
                    *config = Some(args[i].clone());
                } else {
                    st.said.push(Say::Usage);
                    st.log(Priority::Error, "Missing config filename".into());
                }
            }
            b'F' => {
                st.mode(Type::Request)?;
                st.by_table(
                    args,
                    &mut i,
                    Action::CtFlushMaster,
                    Action::ExpFlushMaster,
                    Action::AllFlushMaster,
                );
            }
            b'f' => {
                st.mode(Type::Request)?;
                match table_arg(args, i) {
                    Some(a) if prefix_of(a, "internal") => {
                        st.action = Some(Action::CtFlushIntCache);
                        i += 1;
                    }
                    Some(a) if prefix_of(a, "external") => {
                        st.action = Some(Action::CtFlushExtCache);
                        i += 1;
                    }
                    Some(a) => {
                        let msg = format!("unknown parameter `{a}' for option `-f'");
                        st.log(Priority::Error, msg);
                        return Err(1);
                    }
                    None => st.action = Some(Action::AllFlushCache),
                }
            }
            b'R' => {
                st.mode(Type::Request)?;
                st.by_table(
                    args,
                    &mut i,
                    Action::CtResyncMaster,
                    Action::ExpResyncMaster,
                    Action::AllResyncMaster,
                );
            }
            b'B' => {
                st.mode(Type::Request)?;
                st.action = Some(Action::SendBulk);
            }
            b't' => {
                st.mode(Type::Request)?;
                st.action = Some(Action::ResetTimers);
            }
            b'k' => {
                st.mode(Type::Request)?;
                st.action = Some(Action::Kill);
            }
            b's' => {
                st.mode(Type::Request)?;
                match table_arg(args, i) {
                    Some(a) => match STATS_WORDS.iter().find(|(w, _)| prefix_of(a, w)) {
                        Some((w, action)) => {
                            if *w == "multicast" {
                                st.log(
                                    Priority::Warning,
                                    "use `link' instead of `multicast' as parameter.".into(),
                                );
                            }
                            st.action = Some(*action);
                            i += 1;
                        }
                        None => {
                            let msg = format!("unknown parameter `{a}' for option `-s'");
                            st.log(Priority::Error, msg);
                            return Err(1);
                        }
                    },
                    None => st.action = Some(Action::Stats),
                }
            }
            b'n' => {
                st.mode(Type::Request)?;
                st.action = Some(Action::RequestDump);
            }
            b'x' => {
                st.action = match st.action {
                    Some(Action::CtDumpInternal) => Some(Action::CtDumpIntXml),
                    Some(Action::CtDumpExternal) => Some(Action::CtDumpExtXml),
                    Some(Action::ExpDumpInternal) => Some(Action::ExpDumpIntXml),
                    Some(Action::ExpDumpExternal) => Some(Action::ExpDumpExtXml),
                    _ => {
                        st.said.push(Say::Usage);
                        st.log(Priority::Error, "Invalid parameters".into());
                        return Err(1);
                    }
                };
            }
            b'v' => {
                st.said.push(Say::Version);
                return Err(0);
            }
            b'h' => {
                st.said.push(Say::Usage);
                return Err(0);
            }
            _ => {
                st.said.push(Say::Usage);
                st.log(Priority::Error, format!("Unknown option: {arg}"));
                return Err(0);
            }
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Parsed {
        let mut args = vec!["conntrackd".to_string()];
        args.extend(line.split_whitespace().map(str::to_string));
        parse(&args)
    }

    fn go(line: &str) -> Args {
        match p(line).end {
            End::Go(a) => a,
            e => panic!("{line}: {e:?}"),
        }
    }

    #[test]
    fn tables_and_prefixes() {
        assert_eq!(go("-i").mode, Mode::Request(Some(Action::CtDumpInternal)));
        assert_eq!(
            go("-i e").mode,
            Mode::Request(Some(Action::ExpDumpInternal))
        );
        assert_eq!(
            go("-e c -x").mode,
            Mode::Request(Some(Action::CtDumpExtXml))
        );
        assert_eq!(go("-c").mode, Mode::Request(Some(Action::AllCommit)));
        assert_eq!(
            go("-F expect").mode,
            Mode::Request(Some(Action::ExpFlushMaster))
        );
        assert_eq!(
            go("-f ext").mode,
            Mode::Request(Some(Action::CtFlushExtCache))
        );
        assert_eq!(go("-s r").mode, Mode::Request(Some(Action::StatsRuntime)));
        assert_eq!(go("-s p").mode, Mode::Request(Some(Action::StatsProcess)));
        assert_eq!(go("-s").mode, Mode::Request(Some(Action::Stats)));
        assert_eq!(go("-dfoo").mode, Mode::Daemon);
        assert_eq!(go("").mode, Mode::Console);
        assert_eq!(go("-C /x -k").config, "/x");
        assert_eq!(go("-k").config, DEFAULT_CONFIG);
    }

    #[test]
    fn the_empty_argument_is_a_prefix_of_everything() {
        let args: Vec<String> = ["conntrackd", "-s", ""].map(String::from).to_vec();
        assert!(matches!(
            parse(&args).end,
            End::Go(Args {
                mode: Mode::Request(Some(Action::StatsNetwork)),
                ..
            })
        ));
    }

    #[test]
    fn errors_and_their_exit_status() {
        assert_eq!(p("-d -i").end, End::Exit(1));
        assert_eq!(p("-x").end, End::Exit(1));
        assert_eq!(p("-q").end, End::Exit(0));
        assert_eq!(p("-i foo").end, End::Exit(0));
        assert_eq!(p("-f bogus").end, End::Exit(1));
        assert_eq!(p("-h").said, vec![Say::Usage]);
        assert_eq!(p("-v -h").said, vec![Say::Version]);
        let missing = p("-c -C");
        assert_eq!(missing.said.len(), 2);
        assert!(matches!(missing.end, End::Go(_)));
    }
}
