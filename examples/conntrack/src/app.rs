//! The program: the command line (or the lines of a `-R` file) in, the commands run, the
//! failure reported as conntrack-tools 1.4.7 reports it, the exit status out.
//!
//! [`run`] is the whole program over any [`Term`], [`System`] and [`Kernel`]: [`main`]
//! gives it this process's streams, files and netlink sockets; a test gives it buffers,
//! files in memory and [`EmptyTable`](crate::kernel::EmptyTable).

use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use conntrack_io::Error as IoError;

use crate::cat;
use crate::kernel::{Kernel, Sockets};
use crate::out::Term;
use crate::parse::{cmd, do_parse, Cmd, Fail};
use crate::run::Ctx;
use crate::sys::{Machine, System, STDIN};

/// What conntrack-tools puts before its messages.
pub const PREFIX: &str = "conntrack v1.4.7 (conntrack-tools): ";

/// Prints a failure as `exit_error` does and returns the exit status.
fn report(term: &mut Term, fail: &Fail) -> u8 {
    term.err_line(&cat!(PREFIX, fail.msg));
    if fail.param {
        term.err_line(b"Try `conntrack -h' or 'conntrack --help' for more information.");
    }
    term.out.flush();
    if fail.param {
        2
    } else {
        1
    }
}

/// Splits a line of a `-R` file into arguments as conntrack-tools does: blanks separate
/// them, double quotes group, a backslash escapes within quotes, and a closing quote ends
/// an argument.
///
/// # Errors
/// Too many arguments, or one too long.
pub fn split_line(line: &[u8]) -> Result<Vec<Vec<u8>>, Fail> {
    let mut args = Vec::new();
    let mut param: Vec<u8> = Vec::new();
    let mut quote_open = false;
    let mut escaped = false;
    let push = |param: &mut Vec<u8>, args: &mut Vec<Vec<u8>>| -> Result<(), Fail> {
        if args.len() + 2 >= 255 {
            return Err(Fail::param("too many arguments"));
        }
        args.push(std::mem::take(param));
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

/// The lines of a file as `fgets` into a buffer of 10240 bytes hands them out: a longer
/// line comes in pieces of 10239 bytes.
fn fgets_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n')
        .flat_map(|line| line.chunks(10239))
}

/// Parses every line of a `-R` file (all of them before anything runs).
fn parse_file(ctx: &mut Ctx, name: &[u8]) -> Result<Vec<Cmd>, Fail> {
    let path: Vec<u8> = if name == b"-" {
        STDIN.as_bytes().to_vec()
    } else {
        name.to_vec()
    };
    let data = ctx
        .sys
        .read(&String::from_utf8_lossy(&path))
        .map_err(|_| Fail::param(cat!("Failed to open file ", path, " for reading")))?;
    let mut cmds = Vec::new();
    for line in fgets_lines(&data) {
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
        let c = do_parse(argv, &mut ctx.g, ctx.sys.as_mut(), &mut ctx.term.err)?;
        ctx.cur = c.tmpl.clone();
        cmds.push(c);
    }
    Ok(cmds)
}

/// `-R FILE`: every line parsed, then checked, then run in order; the first failure ends
/// the program, as in 1.4.7.
fn run_file(ctx: &mut Ctx, k: &mut dyn Kernel, name: &[u8]) -> u8 {
    let mut cmds = match parse_file(ctx, name) {
        Ok(c) => c,
        Err(f) => return report(&mut ctx.term, &f),
    };
    let allowed = cmd::CT_CREATE | cmd::CT_ADD | cmd::CT_UPDATE | cmd::CT_DELETE | cmd::CT_FLUSH;
    if let Some(c) = cmds.iter().find(|c| c.command & allowed == 0) {
        let f = Fail::param(format!(
            "Cannot use command `{}' with --load-file",
            unsupported_name(c.command)
        ));
        return report(&mut ctx.term, &f);
    }
    for c in &mut cmds {
        if let Err(f) = ctx.run(c, k) {
            return report(&mut ctx.term, &f);
        }
    }
    ctx.term.out.flush();
    0
}

/// The whole program: `argv` (the program name first) run against the kernel `open`
/// gives, reading files from `sys`, writing to `term`; returns the exit status.
pub fn run(
    argv: Vec<Vec<u8>>,
    term: Term,
    sys: Box<dyn System + Send>,
    open: &mut dyn FnMut() -> Result<Box<dyn Kernel>, IoError>,
) -> u8 {
    let progname = argv
        .first()
        .cloned()
        .unwrap_or_else(|| b"conntrack".to_vec());
    let mut ctx = Ctx::new(progname, term, sys);
    ctx.g.stderr_rw = ctx.term.err_rw;
    let mut k = match open() {
        Ok(k) => k,
        Err(_) => return report(&mut ctx.term, &Fail::other("Can't open handler")),
    };
    let load = argv
        .get(1)
        .is_some_and(|a| a == b"-R" || a == b"--load-file");
    if argv.len() > 2 && load {
        let name = argv.get(2).cloned().unwrap_or_default();
        return run_file(&mut ctx, k.as_mut(), &name);
    }
    let mut c = match do_parse(argv, &mut ctx.g, ctx.sys.as_mut(), &mut ctx.term.err) {
        Ok(c) => c,
        Err(f) => return report(&mut ctx.term, &f),
    };
    ctx.cur = c.tmpl.clone();
    if let Err(f) = ctx.run(&mut c, k.as_mut()) {
        return report(&mut ctx.term, &f);
    }
    let ok = ctx.print_stats(&c);
    ctx.term.out.flush();
    u8::from(!ok)
}

/// This process: its arguments (as bytes), streams, files and netlink sockets. A closed
/// standard output kills it with SIGPIPE, as it does conntrack-tools.
pub fn main() -> ExitCode {
    crate::signals::default_sigpipe();
    let argv: Vec<Vec<u8>> = std::env::args_os().map(OsStringExt::into_vec).collect();
    let code = run(argv, Term::process(), Box::new(Machine), &mut || {
        Sockets::open().map(|s| Box::new(s) as Box<dyn Kernel>)
    });
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::split_line;

    fn words(line: &[u8]) -> Vec<Vec<u8>> {
        split_line(line).unwrap()
    }

    #[test]
    fn lines_split_like_the_tool() {
        let a = words(b"-I -s 1.1.1.1  \"a b\"c \"\"\n");
        let want: Vec<&[u8]> = vec![b"-I", b"-s", b"1.1.1.1", b"a b", b"c", b""];
        assert_eq!(a, want);
        assert_eq!(words(b"\"x\\\"y\""), vec![b"x\"y".to_vec()]);
        assert_eq!(
            words(b"\xff \xfe"),
            vec![b"\xff".to_vec(), b"\xfe".to_vec()]
        );
        let long = vec![b'x'; 1024];
        assert_eq!(split_line(&long).unwrap_err().msg, b"Parameter too long!");
    }
}
