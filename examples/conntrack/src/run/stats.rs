//! `-C` and `-S` (and their `expect` forms), with 1.4.7's fallbacks to `/proc` when
//! netlink refuses (without `CAP_NET_ADMIN`).

use std::fmt::Write as _;

use conntrack_codec::fmt::{ExpStatsCpuLine, StatsCpuLine};

use super::{failed, Ctx};
use crate::cnum;
use crate::kernel::Kernel;
use crate::parse::{cmd, Cmd, Fail};

/// Where 1.4.7 reads the number of entries when netlink fails.
const COUNT: &str = "/proc/sys/net/netfilter/nf_conntrack_count";
/// Where 1.4.7 reads the statistics when netlink fails.
const STATS: &str = "/proc/net/stat/nf_conntrack";

impl Ctx {
    pub(super) fn count(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        match k.count() {
            Ok(n) => {
                self.term.out.line(format_args!("{}", n as i32));
                Ok(())
            }
            Err(e) => {
                // 1.4.7 falls back to /proc, prints what it finds there, and still reports
                // the netlink failure.
                let text = self
                    .sys
                    .read(COUNT)
                    .map_err(|_| Fail::other(format!("Can't open {COUNT}")))?;
                let skip = text.iter().take_while(|b| b.is_ascii_whitespace()).count();
                let (n, used) = cnum::strtoll(text.get(skip..).unwrap_or_default());
                if used == 0 {
                    return Err(Fail::other(format!("Can't read {COUNT}")));
                }
                self.term.out.line(format_args!("{}", n as i32));
                Err(failed(&e, c.command))
            }
        }
    }

    pub(super) fn stats(&mut self, c: &mut Cmd, k: &mut dyn Kernel) -> Result<(), Fail> {
        let res = if c.command == cmd::EXP_STATS {
            k.exp_stats_per_cpu().map(|stats| {
                for s in &stats {
                    self.term.out.line(format_args!("{}", ExpStatsCpuLine(s)));
                }
            })
        } else {
            k.stats_per_cpu().map(|stats| {
                for s in &stats {
                    self.term.out.line(format_args!("{}", StatsCpuLine(s)));
                }
            })
        };
        res.or_else(|e| {
            self.proc_stats()?;
            Err(failed(&e, c.command))
        })
    }

    /// The statistics of `/proc/net/stat/nf_conntrack`, which 1.4.7 prints when netlink
    /// fails: the names from the first line, one line of hex values per CPU.
    fn proc_stats(&mut self) -> Result<(), Fail> {
        let fail = || Fail::other("Can't open /proc interface");
        let bytes = self.sys.read(STATS).map_err(|_| fail())?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        let names: Vec<&str> = lines.next().ok_or_else(fail)?.split_whitespace().collect();
        let mut values = vec![0u32; names.len()];
        let mut cpu = 0u32;
        for line in lines {
            for (v, token) in values.iter_mut().zip(line.split_whitespace()) {
                *v = cnum::strtoull(token.as_bytes(), 16).0 as u32;
            }
            let mut l = format!("cpu={cpu:<4}\t");
            for (name, v) in names.iter().zip(&values) {
                let _ = write!(l, "{name}={v} ");
            }
            self.term.out.line(format_args!("{l}"));
            cpu += 1;
        }
        if cpu == 0 {
            return Err(fail());
        }
        Ok(())
    }
}
