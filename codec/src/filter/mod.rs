//! Filters the kernel applies: the tuple filter of dumps (`CTA_FILTER`) and, later, the
//! classic-BPF event filter.

pub mod bpf;
mod dump;

pub use dump::{filter_flags, DumpFilter, FilterFlags};
