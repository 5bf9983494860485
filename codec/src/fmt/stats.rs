//! The lines of `conntrack -S`: per-CPU conntrack and expectation statistics.

use core::fmt::{self, Display, Formatter};

use crate::ct::{ExpStatsCpu, StatsCpu};

/// One line of `conntrack -S`: `cpu=N` then every counter the kernel sent, each followed by
/// a space (the line keeps its trailing space).
pub struct StatsCpuLine<'a>(pub &'a StatsCpu);

/// Logs the text line (through `core::fmt`).
#[cfg(feature = "defmt")]
impl defmt::Format for StatsCpuLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for StatsCpuLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "cpu={:<4}\t", s.cpu)?;
        for (name, v) in [
            ("searched", s.searched),
            ("found", s.found),
            ("new", s.new),
            ("invalid", s.invalid),
            ("ignore", s.ignore),
            ("delete", s.delete),
            ("delete_list", s.delete_list),
            ("insert", s.insert),
            ("insert_failed", s.insert_failed),
            ("drop", s.drop),
            ("early_drop", s.early_drop),
            ("error", s.error),
            ("search_restart", s.search_restart),
            ("clash_resolve", s.clash_resolve),
            ("chaintoolong", s.chain_toolong),
        ] {
            if let Some(v) = v {
                write!(f, "{name}={v} ")?;
            }
        }
        Ok(())
    }
}

/// One line of `conntrack -S expect`.
pub struct ExpStatsCpuLine<'a>(pub &'a ExpStatsCpu);

/// Logs the text line (through `core::fmt`).
#[cfg(feature = "defmt")]
impl defmt::Format for ExpStatsCpuLine<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}

impl Display for ExpStatsCpuLine<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        write!(f, "cpu={:<4}\t", s.cpu)?;
        for (name, v) in [
            ("expect_new", s.new),
            ("expect_create", s.create),
            ("expect_delete", s.delete),
        ] {
            if let Some(v) = v {
                write!(f, "{name}={v} ")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::text::tests::show;

    #[test]
    fn stats_lines() {
        let s = StatsCpu {
            cpu: 1,
            found: Some(0),
            invalid: Some(4),
            ..StatsCpu::default()
        };
        assert_eq!(
            show(StatsCpuLine(&s)).as_str(),
            "cpu=1   \tfound=0 invalid=4 "
        );
    }
}
