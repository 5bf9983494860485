//! Errors that compose, against the real kernel (each test in its own throwaway network
//! namespace): `?` inside dump callbacks with the caller's error type, impossible requests
//! refused before anything is sent, receive-queue sizes clamped instead of truncated.

use std::net::{IpAddr, Ipv4Addr};

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::{ConntrackRepr, Tuple};
use conntrack_codec::filter::{filter_flags, DumpFilter};
use conntrack_io::{Error, Socket};
use conntrack_tests::Netns;

fn udp(i: u8) -> ConntrackRepr {
    let orig = Tuple::udp(
        IpAddr::V4(Ipv4Addr::new(10, 3, 0, i)),
        IpAddr::V4(Ipv4Addr::new(10, 3, 1, 1)),
        1000,
        53,
    );
    ConntrackRepr {
        orig: Some(orig),
        reply: Some(orig.inverted()),
        timeout: Some(300),
        mark: Some(u32::from(i)),
        ..ConntrackRepr::default()
    }
}

#[derive(Debug)]
enum AppError {
    Conntrack(Error),
    TooMany(u32),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Conntrack(e)
    }
}

impl From<conntrack_codec::Error> for AppError {
    fn from(e: conntrack_codec::Error) -> Self {
        AppError::Conntrack(e.into())
    }
}

#[test]
fn dump_callbacks_use_question_marks_with_the_callers_error() {
    let ns = Netns::new("err-try");
    let mut sock = ns.socket();
    for i in 1..=5 {
        sock.create(&udp(i)).unwrap();
    }
    // Every entry read through `?`.
    let mut marks = Vec::new();
    let summary = sock
        .try_list(&DumpFilter::ipv4(), |entry| {
            marks.push(entry.mark()?.unwrap_or(0));
            Ok::<_, AppError>(())
        })
        .unwrap();
    marks.sort_unstable();
    assert_eq!(marks, [1, 2, 3, 4, 5]);
    assert_eq!(summary.delivered, 5);
    // The caller's error stops the dump, and the socket is ready for the next request.
    let mut seen = 0;
    let stopped = sock.try_list(&DumpFilter::ipv4(), |entry| {
        seen += 1;
        match entry.mark()? {
            Some(m) if m >= 1 => Err(AppError::TooMany(m)),
            _ => Ok(()),
        }
    });
    match stopped {
        Err(AppError::TooMany(mark)) => assert!((1..=5).contains(&mark)),
        other => panic!("{other:?}"),
    }
    assert_eq!(seen, 1);
    assert_eq!(sock.count().unwrap(), 5);
    // The socket's own errors arrive as the caller's: an impossible filter, nothing sent.
    let impossible = DumpFilter {
        family: 0,
        orig: Some((Tuple::default(), filter_flags::IP_SRC)),
        ..DumpFilter::default()
    };
    let refused = sock.try_list(&impossible, |_| Ok::<_, AppError>(()));
    assert!(
        matches!(refused, Err(AppError::Conntrack(Error::Build(_)))),
        "{refused:?}"
    );
    if let Err(AppError::Conntrack(e)) = refused {
        println!("refused before sending: {e}");
    }
}

#[test]
fn impossible_requests_are_refused_before_sending() {
    let ns = Netns::new("err-impossible");
    let mut sock = ns.socket();
    sock.create(&udp(1)).unwrap();
    let v6: IpAddr = "fd00::1".parse().unwrap();
    let v4: IpAddr = "10.3.0.1".parse().unwrap();
    let filters = [
        // A flag whose field is unset.
        DumpFilter {
            family: 2,
            reply: Some((Tuple::default(), filter_flags::PROTO_SRC_PORT)),
            ..DumpFilter::default()
        },
        // A tuple with family 0 and no address to take it from.
        DumpFilter::all().with_orig(Tuple {
            proto: Some(17),
            ..Tuple::default()
        }),
        // Mixed IPv4/IPv6.
        DumpFilter::all().with_orig(Tuple {
            src: Some(v4),
            dst: Some(v6),
            ..Tuple::default()
        }),
        // Ports without a protocol; a zero status mask.
        DumpFilter::ipv4().with_orig(Tuple {
            dst_port: Some(53),
            ..Tuple::default()
        }),
        DumpFilter::all().with_status(Default::default(), Default::default()),
    ];
    for f in &filters {
        let before = sock.next_seq();
        for r in [
            sock.list(f, |_| std::ops::ControlFlow::Continue(()))
                .map(drop),
            sock.flush(f).map(drop),
            sock.delete_matching(f).map(drop),
            sock.list_and_zero(f, |_| std::ops::ControlFlow::Continue(()))
                .map(drop),
        ] {
            match r {
                Err(Error::Build(conntrack_codec::Error::ImpossibleRequest(why))) => {
                    println!("{f:?}: {why}")
                }
                other => panic!("{f:?}: {other:?}"),
            }
        }
        // Nothing was sent: no sequence number was used.
        assert_eq!(sock.next_seq(), before);
    }
    let keys = [
        Key::orig(Tuple::udp(v4, v6, 1, 2)),
        Key::orig(Tuple {
            dst_port: None,
            ..Tuple::udp(v4, v4, 1, 2)
        }),
    ];
    for k in &keys {
        let r = sock.delete(k);
        assert!(
            matches!(
                r,
                Err(Error::Build(conntrack_codec::Error::ImpossibleRequest(_)))
            ),
            "{k:?}: {r:?}"
        );
    }
    assert_eq!(sock.count().unwrap(), 1);
}

#[test]
fn receive_queue_sizes_are_clamped_not_truncated() {
    let ns = Netns::new("err-rcvbuf");
    let sock: Socket = ns.socket();
    // 2 GiB does not fit a C int: it is clamped to i32::MAX, which the kernel caps at
    // INT_MAX / 2 and doubles; it must not wrap to a few bytes.
    let got = sock.set_rcvbuf(2_147_483_648).unwrap();
    println!("asked 2147483648, got {got}");
    assert!(got >= 1 << 30, "{got}");
    let got = sock.set_rcvbuf(usize::MAX).unwrap();
    assert!(got >= 1 << 30, "{got}");
    let small = sock.set_rcvbuf(4096).unwrap();
    assert!((4096..1 << 20).contains(&small), "{small}");
}
