//! Filters the kernel applies: the tuple filter of dumps (`CTA_FILTER`) and the classic-BPF
//! event filter ([`bpf`]).

pub mod bpf;
pub mod dump;

pub use bpf::{BpfInsn, EventFilter};
pub use dump::{filter_flags, DumpFilter, FilterFlags, KernelRelease};
