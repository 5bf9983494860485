//! A compiler from an event filter description to a classic-BPF socket filter.
