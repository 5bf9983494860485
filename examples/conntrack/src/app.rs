//! The program: the command line (or the lines of a `-R` file) in, the commands run, the
//! failure reported as conntrack-tools 1.4.7 reports it.

use std::process::ExitCode;

use conntrack_io::Socket;

use crate::parse::{cmd, do_parse, Cmd, Fail};
use crate::run::Ctx;

const PREFIX: &str = "conntrack v1.4.7 (conntrack-tools): ";

/// Prints a failure as `exit_error` does and returns the exit status.
fn report(ctx: &mut Ctx, fail: &Fail) -> ExitCode {
    if let Some(pre) = &fail.pre {
        eprintln!("{pre}");
    }
    eprintln!("{PREFIX}{}", fail.msg);
    if fail.param {
        eprintln!("Try `conntrack -h' or 'conntrack --help' for more information.");
    }
    ctx.out.flush();
    ExitCode::from(if fail.param { 2 } else { 1 })
}

/// Splits a line of a `-R` file into arguments as conntrack-tools does: blanks separate
/// them, double quotes group, a backslash escapes within quotes, and a closing quote ends
/// an argument.
fn split_line(line: &[u8]) -> Result<Vec<String>, Fail> {
    let mut args = Vec::new();
    let mut param: Vec<u8> = Vec::new();
    let mut quote_open = false;
    let mut escaped = false;
    let push = |param: &mut Vec<u8>, args: &mut Vec<String>| -> Result<(), Fail> {
        if args.len() + 2 >= 255 {
            return Err(Fail::param("too many arguments"));
        }
        args.push(String::from_utf8_lossy(param).into_owned());
        param.clear();
        Ok(())
    };
    let add = |param: &mut Vec<u8>, c: u8| -> Result<(), Fail> {
        param.push(c);
        if param.len() >= 1024 {
            return Err(Fail::param("Parameter too long!"));
        }
        Ok(())
    };
    for &c in line {
        if quote_open {
            if escaped {
                add(&mut param, c)?;
                escaped = false;
                continue;
            } else if c == b'\\' {
                escaped = true;
                continue;
            } else if c == b'"' {
                quote_open = false;
            } else {
                add(&mut param, c)?;
                continue;
            }
        } else if c == b'"' {
            quote_open = true;
            continue;
        }
        match c {
            b'"' => {}
            b' ' | b'\t' | b'\n' => {
                if param.is_empty() {
                    continue;
                }
            }
            _ => {
                add(&mut param, c)?;
                continue;
            }
        }
        push(&mut param, &mut args)?;
    }
    if !param.is_empty() {
        push(&mut param, &mut args)?;
    }
    Ok(args)
}

/// The name 1.4.7 gives a command that `-R` refuses.
fn unsupported_name(command: u32) -> &'static str {
    match command {
        cmd::CT_LIST => "-L",
        cmd::CT_GET => "-G",
        cmd::CT_EVENT => "-E",
        cmd::CT_VERSION => "-V",
        cmd::CT_HELP => "-h",
        cmd::EXP_LIST => "-L expect",
        cmd::EXP_CREATE => "-C expect",
        cmd::EXP_DELETE => "-D expect",
        cmd::EXP_GET => "-G expect",
        cmd::EXP_FLUSH => "-F expect",
        cmd::EXP_EVENT => "-E expect",
        cmd::CT_COUNT => "-C",
        cmd::EXP_COUNT => "-C expect",
        cmd::CT_STATS => "-S",
        cmd::EXP_STATS => "-S expect",
        _ => "unknown",
    }
}

/// Parses every line of a `-R` file (all of them before anything runs).
fn parse_file(ctx: &mut Ctx, name: &str) -> Result<Vec<Cmd>, Fail> {
    let path = if name == "-" { "/dev/stdin" } else { name };
    let data = std::fs::read(path)
        .map_err(|_| Fail::param(format!("Failed to open file {path} for reading")))?;
    let mut cmds = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        // fgets into a buffer of 10240 bytes.
        let cut = rest
            .iter()
            .take(10239)
            .position(|&b| b == b'\n')
            .map_or(rest.len().min(10239), |p| p + 1);
        let (line, tail) = rest.split_at(cut);
        rest = tail;
        let start = line
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let line = &line[start..];
        if matches!(line.first(), Some(b'\n' | b'#')) {
            continue;
        }
        let mut argv = vec![ctx.progname.clone()];
        argv.extend(split_line(line)?);
        if let Some(path) = crate::parse::prescan_labelmap(&argv) {
            ctx.g.labelmap_path = Some(path);
        }
        let c = do_parse(argv, &mut ctx.g)?;
        ctx.cur = c.tmpl.clone();
        cmds.push(c);
    }
    Ok(cmds)
}

/// The whole program: reads the process's arguments, runs the command(s), and returns the
/// exit status.
pub fn main() -> ExitCode {
    // conntrack-tools dies of SIGPIPE when its reader goes away; so do we.
    // SAFETY: restoring the default action of a signal before any thread exists.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
    }
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut ctx = Ctx {
        progname: argv.first().cloned().unwrap_or_else(|| "conntrack".into()),
        ..Ctx::default()
    };
    ctx.g.labelmap_path = crate::parse::prescan_labelmap(&argv);
    let mut sock = match Socket::open() {
        Ok(s) => s,
        Err(_) => return report(&mut ctx, &Fail::other("Can't open handler")),
    };
    let load = argv.get(1).is_some_and(|a| a == "-R" || a == "--load-file");
    if argv.len() > 2 && load {
        let name = argv.get(2).cloned().unwrap_or_default();
        let mut cmds = match parse_file(&mut ctx, &name) {
            Ok(c) => c,
            Err(f) => return report(&mut ctx, &f),
        };
        let allowed =
            cmd::CT_CREATE | cmd::CT_ADD | cmd::CT_UPDATE | cmd::CT_DELETE | cmd::CT_FLUSH;
        if let Some(c) = cmds.iter().find(|c| c.command & allowed == 0) {
            let f = Fail::param(format!(
                "Cannot use command `{}' with --load-file",
                unsupported_name(c.command)
            ));
            return report(&mut ctx, &f);
        }
        for c in &mut cmds {
            if let Err(f) = ctx.run(c, &mut sock) {
                return report(&mut ctx, &f);
            }
        }
        ctx.out.flush();
        return ExitCode::SUCCESS;
    }
    let mut c = match do_parse(argv, &mut ctx.g) {
        Ok(c) => c,
        Err(f) => return report(&mut ctx, &f),
    };
    ctx.cur = c.tmpl.clone();
    if let Err(f) = ctx.run(&mut c, &mut sock) {
        return report(&mut ctx, &f);
    }
    let ok = ctx.print_stats(&c);
    ctx.out.flush();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::split_line;

    #[test]
    fn lines_split_like_the_tool() {
        let a = split_line(b"-I -s 1.1.1.1  \"a b\"c \"\"\n").unwrap();
        assert_eq!(a, vec!["-I", "-s", "1.1.1.1", "a b", "c", ""]);
        let a = split_line(b"\"x\\\"y\"").unwrap();
        assert_eq!(a, vec!["x\"y"]);
    }
}
