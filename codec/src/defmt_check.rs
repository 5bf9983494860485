//! A compile-time check that the public types implement `defmt::Format` (feature `defmt`).
//!
//! Nothing here runs or takes space: the bounds are checked when the crate is built with
//! `--features defmt` (as `.ci/run` does for `thumbv7em-none-eabihf`). A new public type
//! belongs in this list.

use crate::labels::LabelMap;
use crate::{ct, exp, filter, fmt, nfnl, nl, session, sync, Error};

// Used only in `const` assertions, which rustc 1.88 (the rust-version) does not count as uses.
#[allow(dead_code)]
const fn format<T: defmt::Format + ?Sized>() {}

const _: () = {
    format::<Error>();

    format::<session::SeqCounter>();
    format::<session::Foreign>();
    format::<session::Failure<'static>>();
    format::<session::Step<'static>>();
    format::<session::Exchange>();
    format::<session::Dump>();
    format::<session::AckStep<'static>>();
    format::<session::AckTracker<'static>>();

    format::<filter::bpf::BpfInsn>();
    format::<filter::bpf::Logic>();
    format::<filter::bpf::ByteSet>();
    format::<filter::bpf::MatchSet<filter::bpf::MarkMatch, 4>>();
    format::<filter::bpf::Ipv4Match>();
    format::<filter::bpf::Ipv6Match>();
    format::<filter::bpf::MarkMatch>();
    format::<filter::bpf::EventFilter>();

    format::<nl::Attr<'static>>();
    format::<nl::Attrs<'static>>();
    format::<nl::Control<'static>>();
    format::<nl::DoneMsg<'static>>();
    format::<nl::ErrorMsg<'static>>();
    format::<nl::ExtAck<'static>>();
    format::<nl::Messages<'static>>();
    format::<nl::NlMsg<'static>>();
    format::<nl::NlMsgHeader>();
    format::<nl::Writer<'static>>();

    format::<nfnl::NfGenMsg>();
    format::<nfnl::NfMsg<'static>>();
    format::<nfnl::Subsystem>();

    format::<ct::Conntrack<'static>>();
    format::<ct::ConntrackRepr>();
    format::<ct::Counters>();
    format::<ct::DccpInfo>();
    format::<ct::DccpRole>();
    format::<ct::DccpState>();
    format::<ct::EventKind>();
    format::<ct::ExpStatsCpu>();
    format::<ct::Helper>();
    format::<ct::Labels>();
    format::<ct::NatRange>();
    format::<ct::ProtoInfo>();
    format::<ct::SctpInfo>();
    format::<ct::SctpState>();
    format::<ct::SecCtx>();
    format::<ct::SeqAdj>();
    format::<ct::StatsCpu>();
    format::<ct::StatsGlobal>();
    format::<ct::Status>();
    format::<ct::Synproxy>();
    format::<ct::TcpFlags>();
    format::<ct::TcpInfo>();
    format::<ct::TcpState>();
    format::<ct::Timestamp>();
    format::<ct::Tuple>();
    format::<ct::UnknownAttr>();
    format::<ct::Unknowns>();
    format::<ct::request::Key>();

    format::<exp::Expect<'static>>();
    format::<exp::ExpectFlags>();
    format::<exp::ExpectNat>();
    format::<exp::ExpectRepr>();
    format::<exp::request::ExpKey>();

    format::<filter::DumpFilter>();
    format::<filter::FilterFlags>();

    format::<fmt::Addr>();
    format::<fmt::Ctime>();
    format::<fmt::CtLine<'static, LabelMap>>();
    format::<fmt::CtLine<'static, dyn crate::labels::LabelNames>>();
    format::<fmt::ExpLine<'static>>();
    format::<fmt::ExpStatsCpuLine<'static>>();
    format::<fmt::Origin>();
    format::<fmt::Output>();
    format::<fmt::StatsCpuLine<'static>>();
    format::<fmt::Style>();
    format::<fmt::Userspace<'static>>();

    format::<sync::Header>();
    format::<sync::Messages<'static>>();
    format::<sync::Message<'static>>();
    format::<sync::DataKind>();
    format::<sync::Body<'static>>();
    format::<sync::Control>();
    format::<sync::NtaAttr<'static>>();
    format::<sync::NtaAttrs<'static>>();
    format::<sync::NtaWriter<'static>>();
    format::<sync::SyncCt<'static>>();
    format::<sync::SyncExp<'static>>();

    format::<LabelMap>();
    format::<crate::labels::LabelMapError>();
};
