//! `getopt_long` as glibc implements it, for the option syntax of conntrack-tools 1.4.7:
//! argument permutation (non-options are skipped and moved to the end, unless
//! `POSIXLY_CORRECT` is set), `--` ends the options, long options may be abbreviated to any
//! unambiguous prefix (an exact match wins; prefixes of several options that mean the same
//! thing are not ambiguous), `--opt=value` and `--opt value` for required arguments,
//! `--opt=value` only for optional ones, grouped short options (`-zL`), attached short
//! arguments (`-p6`), and the `optind` bookkeeping the error messages of the tool rely on.
//! Arguments are bytes, as in C.

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    /// No argument.
    No,
    /// A required argument (attached, or the next element).
    Required,
    /// An optional argument (attached only: `-Lexpect`, `--dump=expect`).
    Optional,
}

/// A long option: its name, whether it takes an argument, and the value getopt returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongOpt {
    /// The name, without the dashes.
    pub name: &'static str,
    /// Its argument.
    pub has_arg: HasArg,
    /// What getopt returns for it.
    pub val: i32,
}

/// What one call of [`GetOpt::next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// An option, with its argument if it has one.
    Opt(i32, Option<Vec<u8>>),
    /// An option whose required argument is missing (glibc returns `:`).
    MissingArg,
    /// An unknown or ambiguous option, or an argument given to an option without one
    /// (glibc returns `?`).
    Unknown,
}

/// The scanning state of one `getopt_long` loop over an argument vector.
#[derive(Debug, Clone)]
pub struct GetOpt {
    argv: Vec<Vec<u8>>,
    /// The index of the next element to scan (glibc's `optind`).
    pub optind: usize,
    /// The element and byte offset of the next short option in a group.
    nextchar: Option<(usize, usize)>,
    first_nonopt: usize,
    last_nonopt: usize,
    permute: bool,
}

impl GetOpt {
    /// Starts scanning `argv` (whose first element is the program name); `permute` is
    /// false when `POSIXLY_CORRECT` is set (then the first non-option ends the options).
    pub fn new(argv: Vec<Vec<u8>>, permute: bool) -> Self {
        GetOpt {
            argv,
            optind: 1,
            nextchar: None,
            first_nonopt: 1,
            last_nonopt: 1,
            permute,
        }
    }

    /// The element before `optind`, as the tool names it in its error messages
    /// (`argv[optind-1]`).
    pub fn prev(&self) -> &[u8] {
        self.optind
            .checked_sub(1)
            .and_then(|i| self.argv.get(i))
            .map_or(&[][..], Vec::as_slice)
    }

    /// The tool's `get_optional_arg`: when the option just returned had no attached
    /// argument, takes the next element as its argument unless it starts with `-` or `!`.
    pub fn optional_arg(&mut self, attached: Option<Vec<u8>>) -> Option<Vec<u8>> {
        if attached.is_some() {
            // The tool returns nothing in that case (it only looks at the next element).
            return None;
        }
        let next = self.argv.get(self.optind)?;
        if matches!(next.first(), Some(b'-' | b'!')) {
            return None;
        }
        let next = next.clone();
        self.optind += 1;
        Some(next)
    }

    fn is_nonoption(&self, i: usize) -> bool {
        self.argv
            .get(i)
            .is_some_and(|a| a.first() != Some(&b'-') || a.len() == 1)
    }

    /// Moves the block of skipped non-options `[first_nonopt, last_nonopt)` after the
    /// options `[last_nonopt, optind)` that followed it.
    fn exchange(&mut self) {
        let (first, last, ind) = (self.first_nonopt, self.last_nonopt, self.optind);
        if first < last && last < ind && ind <= self.argv.len() {
            if let Some(s) = self.argv.get_mut(first..ind) {
                s.rotate_left(last - first);
            }
        }
        self.first_nonopt = first + (ind - last);
        self.last_nonopt = ind;
    }

    /// Skips (and, permuting, sets aside) non-options and `--`; whether an option is next.
    fn advance(&mut self) -> bool {
        let argc = self.argv.len();
        if self.last_nonopt > self.optind {
            self.last_nonopt = self.optind;
        }
        if self.first_nonopt > self.optind {
            self.first_nonopt = self.optind;
        }
        if self.permute {
            if self.first_nonopt != self.last_nonopt && self.last_nonopt != self.optind {
                self.exchange();
            } else if self.last_nonopt != self.optind {
                self.first_nonopt = self.optind;
            }
            while self.optind < argc && self.is_nonoption(self.optind) {
                self.optind += 1;
            }
            self.last_nonopt = self.optind;
        }
        if self.optind != argc && self.argv.get(self.optind).is_some_and(|a| a == b"--") {
            self.optind += 1;
            if self.first_nonopt != self.last_nonopt && self.last_nonopt != self.optind {
                self.exchange();
            } else if self.first_nonopt == self.last_nonopt {
                self.first_nonopt = self.optind;
            }
            self.last_nonopt = argc;
            self.optind = argc;
        }
        if self.optind >= argc {
            if self.first_nonopt != self.last_nonopt {
                self.optind = self.first_nonopt;
            }
            return false;
        }
        // Reached in POSIXLY_CORRECT order: the first non-option ends the options.
        !self.is_nonoption(self.optind)
    }

    /// The next option, or `None` at the end of the options.
    pub fn next(&mut self, shortopts: &str, longopts: &[LongOpt]) -> Option<Got> {
        let at_group_end = match self.nextchar {
            None => true,
            Some((i, off)) => self.argv.get(i).is_none_or(|a| off >= a.len()),
        };
        if at_group_end {
            self.nextchar = None;
            if !self.advance() {
                return None;
            }
            let elem = self.argv.get(self.optind).cloned().unwrap_or_default();
            if let Some(body) = elem.strip_prefix(b"--") {
                return Some(self.long_option(body, shortopts, longopts));
            }
            self.nextchar = Some((self.optind, 1));
        }
        Some(self.short_option(shortopts))
    }

    /// Looks `name` up: an exact match, else the only prefix match (several prefix matches
    /// of options that mean the same are one); `Err` when ambiguous.
    fn lookup<'o>(name: &[u8], opts: &'o [LongOpt]) -> Result<Option<&'o LongOpt>, ()> {
        if let Some(o) = opts.iter().find(|o| o.name.as_bytes() == name) {
            return Ok(Some(o));
        }
        let mut found: Option<&LongOpt> = None;
        let mut ambiguous = false;
        for o in opts
            .iter()
            .filter(|o| crate::text::starts_with(o.name.as_bytes(), name))
        {
            match found {
                None => found = Some(o),
                Some(f) if f.has_arg != o.has_arg || f.val != o.val => ambiguous = true,
                Some(_) => {}
            }
        }
        if ambiguous {
            Err(())
        } else {
            Ok(found)
        }
    }

    /// What glibc returns for a missing required argument.
    fn missing(shortopts: &str) -> Got {
        if shortopts.starts_with(':') {
            Got::MissingArg
        } else {
            Got::Unknown
        }
    }

    fn long_option(&mut self, body: &[u8], shortopts: &str, longopts: &[LongOpt]) -> Got {
        let (name, value) = match crate::text::find(body, b'=') {
            Some(eq) => (&body[..eq], Some(&body[eq + 1..])),
            None => (body, None),
        };
        self.optind += 1;
        let Ok(Some(opt)) = Self::lookup(name, longopts) else {
            return Got::Unknown;
        };
        match (value, opt.has_arg) {
            (Some(_), HasArg::No) => Got::Unknown,
            (Some(v), _) => Got::Opt(opt.val, Some(v.to_vec())),
            (None, HasArg::Required) => match self.argv.get(self.optind).cloned() {
                Some(v) => {
                    self.optind += 1;
                    Got::Opt(opt.val, Some(v))
                }
                None => Self::missing(shortopts),
            },
            (None, _) => Got::Opt(opt.val, None),
        }
    }

    fn short_option(&mut self, shortopts: &str) -> Got {
        let Some((i, off)) = self.nextchar else {
            return Got::Unknown;
        };
        let elem = self.argv.get(i).cloned().unwrap_or_default();
        let c = elem.get(off).copied().unwrap_or(0);
        let rest_at = off + 1;
        let at_end = rest_at >= elem.len();
        self.nextchar = Some((i, rest_at));
        if at_end {
            self.optind += 1;
        }
        let spec = shortopts.as_bytes();
        let pos = if c == b':' || c == b';' || c == 0 {
            None
        } else {
            spec.iter().position(|&s| s == c)
        };
        let Some(pos) = pos else {
            return Got::Unknown;
        };
        let takes = spec.get(pos + 1) == Some(&b':');
        let optional = takes && spec.get(pos + 2) == Some(&b':');
        let val = i32::from(c);
        if !takes {
            return Got::Opt(val, None);
        }
        let rest = elem.get(rest_at..).map(<[u8]>::to_vec);
        self.nextchar = None;
        if optional {
            if at_end {
                return Got::Opt(val, None);
            }
            self.optind += 1;
            return Got::Opt(val, rest);
        }
        if !at_end {
            self.optind += 1;
            return Got::Opt(val, rest);
        }
        match self.argv.get(self.optind).cloned() {
            Some(v) => {
                self.optind += 1;
                Got::Opt(val, Some(v))
            }
            None => Self::missing(shortopts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: &str = ":L::s:zo:";
    const LONG: &[LongOpt] = &[
        LongOpt {
            name: "dump",
            has_arg: HasArg::Optional,
            val: 'L' as i32,
        },
        LongOpt {
            name: "src",
            has_arg: HasArg::Required,
            val: 's' as i32,
        },
        LongOpt {
            name: "orig-src",
            has_arg: HasArg::Required,
            val: 's' as i32,
        },
        LongOpt {
            name: "status",
            has_arg: HasArg::Required,
            val: 'u' as i32,
        },
        LongOpt {
            name: "zero",
            has_arg: HasArg::No,
            val: 'z' as i32,
        },
    ];

    fn argv(args: &[&str]) -> Vec<Vec<u8>> {
        let mut argv = vec![b"conntrack".to_vec()];
        argv.extend(args.iter().map(|s| s.as_bytes().to_vec()));
        argv
    }

    fn all(args: &[&str]) -> (Vec<Got>, GetOpt) {
        let mut g = GetOpt::new(argv(args), true);
        let mut out = Vec::new();
        while let Some(x) = g.next(SHORT, LONG) {
            let stop = !matches!(x, Got::Opt(..));
            out.push(x);
            if stop {
                break;
            }
        }
        (out, g)
    }

    fn opt(c: char, arg: Option<&str>) -> Got {
        Got::Opt(c as i32, arg.map(|a| a.as_bytes().to_vec()))
    }

    #[test]
    fn permutes_and_abbreviates() {
        let (got, _) = all(&["foo", "-L", "--sr", "1.2.3.4", "--ze", "-s5"]);
        assert_eq!(
            got,
            vec![
                opt('L', None),
                opt('s', Some("1.2.3.4")),
                opt('z', None),
                opt('s', Some("5")),
            ]
        );
    }

    #[test]
    fn posixly_correct_stops_at_the_first_non_option() {
        let mut g = GetOpt::new(argv(&["-L", "foo", "-z"]), false);
        assert_eq!(g.next(SHORT, LONG), Some(opt('L', None)));
        assert_eq!(g.next(SHORT, LONG), None);
        assert_eq!(g.optind, 2);
    }

    #[test]
    fn ambiguity_and_errors() {
        let (got, g) = all(&["--s", "x"]);
        assert_eq!(got, vec![Got::Unknown]);
        assert_eq!(g.prev(), b"--s");
        let (got, g) = all(&["-L", "-Xz"]);
        assert_eq!(got.last(), Some(&Got::Unknown));
        assert_eq!(g.prev(), b"-L");
        let (got, g) = all(&["--src"]);
        assert_eq!(got, vec![Got::MissingArg]);
        assert_eq!(g.prev(), b"--src");
        let (got, g) = all(&["--zero=1"]);
        assert_eq!(got, vec![Got::Unknown]);
        assert_eq!(g.prev(), b"--zero=1");
    }

    #[test]
    fn arguments_are_bytes() {
        let mut g = GetOpt::new(
            vec![b"c".to_vec(), b"-s".to_vec(), b"\xff\xfe".to_vec()],
            true,
        );
        assert_eq!(
            g.next(SHORT, LONG),
            Some(Got::Opt('s' as i32, Some(b"\xff\xfe".to_vec())))
        );
        let mut g = GetOpt::new(vec![b"c".to_vec(), b"--\xff".to_vec()], true);
        assert_eq!(g.next(SHORT, LONG), Some(Got::Unknown));
        assert_eq!(g.prev(), b"--\xff");
    }

    #[test]
    fn optional_arguments() {
        let (got, _) = all(&["-Lexpect", "--dump=x"]);
        assert_eq!(got, vec![opt('L', Some("expect")), opt('L', Some("x"))]);
        let mut g = GetOpt::new(argv(&["-L", "expect", "-z"]), true);
        assert_eq!(g.next(SHORT, LONG), Some(opt('L', None)));
        assert_eq!(g.optional_arg(None), Some(b"expect".to_vec()));
        assert_eq!(g.next(SHORT, LONG), Some(opt('z', None)));
        assert_eq!(g.next(SHORT, LONG), None);
    }
}
