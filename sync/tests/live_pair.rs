//! Two nodes of ours in two throwaway network namespaces joined by a veth pair, with 30% of
//! the sync datagrams dropped by an nftables rule in each namespace's output: entries made
//! on each side reach the other's external cache, deletes and updates travel, and a commit
//! puts the peer's entries into the kernel table. Nothing leaves the two namespaces.

mod support;

use std::net::SocketAddr;

use conntrack_codec::ct::request::Key;
use conntrack_codec::ct::ConntrackRepr;
use conntrack_sync::NodeConfig;
use support::*;

const LOSS: &str = "table ip loss {\n chain out {\n type filter hook output priority 0;\n udp dport 3780 numgen random mod 100 < 30 drop\n }\n}\n";

#[test]
fn ours_with_ours_loses_nothing_with_30_percent_loss_each_way() {
    const N: u32 = 3000;
    let p = Pair::new("sync");
    let l = p.links[0].clone();
    p.a.nft(LOSS);
    p.b.nft(LOSS);
    let (ia, ib) = (l.a(false), l.b(false));
    let na = spawn(
        &p.a,
        NodeConfig::new(SocketAddr::new(ia, PORT), SocketAddr::new(ib, PORT)),
    );
    let nb = spawn(
        &p.b,
        NodeConfig::new(SocketAddr::new(ib, PORT), SocketAddr::new(ia, PORT)),
    );
    let t0 = std::time::Instant::now();

    // N entries on each side, made in bulk: marks 0..N on A, 1_000_000.. on B.
    let ea = make_entries(&p.a, 1, N, 0);
    make_entries(&p.b, 2, N, 1_000_000);
    let want_b = range(1_000_000, N);
    let sb = nb.wait_for("A's entries in B's external cache", 60, |s| {
        s.ext_marks == range(0, N)
    });
    let sa = na.wait_for("B's entries in A's external cache", 60, |s| {
        s.ext_marks == want_b
    });
    println!(
        "{N} entries each way with 30% loss each way: complete after {:.1} s; \
         B lost {} and A lost {} datagram messages on the way in; A resent {}, B resent {}",
        t0.elapsed().as_secs_f64(),
        sb.stats.rx_lost,
        sa.stats.rx_lost,
        sa.stats.tx_resent,
        sb.stats.tx_resent,
    );
    assert!(sb.stats.rx_lost > 0, "the loss rule dropped nothing");

    // Updates (mark) and deletes on A travel to B.
    let mut sock = p.a.socket();
    let mut upd = Vec::new();
    for (i, e) in ea.iter().enumerate() {
        let i = i as u32;
        if i.is_multiple_of(3) {
            sock.delete(&Key::orig(e.orig.unwrap())).unwrap();
        } else if i % 3 == 1 {
            upd.push(ConntrackRepr {
                family: 2,
                orig: e.orig,
                mark: Some(500_000 + i),
                ..ConntrackRepr::default()
            });
        }
    }
    sock.update_batch(&upd, 64, |_, r| r.unwrap()).unwrap();
    let mut want: Vec<u32> = (0..N)
        .filter(|i| i % 3 != 0)
        .map(|i| if i % 3 == 1 { 500_000 + i } else { i })
        .collect();
    want.sort_unstable();
    nb.wait_for("A's updates and deletes in B", 60, |s| s.ext_marks == want);

    // Commit on B: A's entries (as they are now) join B's own in B's kernel table.
    let (ok, failed) = nb.run(|n| n.commit().expect("commit"));
    assert_eq!((ok, failed), (want.len() as u64, 0));
    let mut all = want.clone();
    all.extend(want_b.iter());
    all.sort_unstable();
    assert_eq!(kernel_marks(&p.b), all);
    // The entries the commit made are B's now (its internal cache), but are not sent back.
    let s = nb.wait_for("the committed entries in B's internal cache", 20, |s| {
        s.int_len == all.len()
    });
    assert_eq!(s.node.events_own, want.len() as u64);
    na.stop();
    nb.stop();
}
