//! Two nodes of ours in two throwaway network namespaces joined by a veth pair, with 30% of
//! the sync datagrams dropped by an nftables rule in each namespace's output: entries made
//! on each side reach the other's external cache, deletes and updates travel, and a commit
//! puts the peer's entries into the kernel table. Nothing leaves the two namespaces.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, Status, TcpInfo, TcpState, Tuple};
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::sync::SyncCt;
use conntrack_sync::{Node, NodeConfig, Stats};
use conntrack_tests::Netns;
use nix::sched::{setns, CloneFlags};

const PORT: u16 = 3780;
const LOSS: &str = "table ip loss {\n chain out {\n type filter hook output priority 0;\n udp dport 3780 numgen random mod 100 < 30 drop\n }\n}\n";

#[derive(Debug, Default, Clone)]
struct Snapshot {
    ext_marks: Vec<u32>,
    stats: Stats,
    committed: Option<(u64, u64)>,
}

enum Cmd {
    Commit,
    Stop,
}

struct Running {
    cmd: mpsc::Sender<Cmd>,
    snap: Arc<Mutex<Snapshot>>,
    thread: thread::JoinHandle<()>,
}

fn spawn(ns: &Netns, local: Ipv4Addr, peer: Ipv4Addr) -> Running {
    let path = ns.path();
    let snap = Arc::new(Mutex::new(Snapshot::default()));
    let (cmd, rx) = mpsc::channel();
    let s2 = snap.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let f = File::open(&path).expect("open netns");
        setns(f, CloneFlags::CLONE_NEWNET).expect("setns");
        let cfg = NodeConfig::new(
            SocketAddr::new(IpAddr::V4(local), PORT),
            SocketAddr::new(IpAddr::V4(peer), PORT),
        );
        let mut node = Node::start(cfg).expect("start node");
        ready_tx.send(()).unwrap();
        let mut last = Instant::now();
        loop {
            node.run_once(20).expect("run");
            match rx.try_recv() {
                Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => break,
                Ok(Cmd::Commit) => {
                    let r = node.commit().expect("commit");
                    s2.lock().unwrap().committed = Some(r);
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if last.elapsed() > Duration::from_millis(200) {
                last = Instant::now();
                let mut marks: Vec<u32> = node
                    .engine()
                    .external()
                    .filter(|e| !e.expect)
                    .filter_map(|e| SyncCt::new_checked(&e.attrs).ok()?.to_repr().ok()?.mark)
                    .collect();
                marks.sort_unstable();
                let mut s = s2.lock().unwrap();
                s.ext_marks = marks;
                s.stats = node.engine().stats();
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("node started");
    Running { cmd, snap, thread }
}

impl Running {
    fn wait_for(&self, what: &str, secs: u64, f: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.snap.lock().unwrap().clone();
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < end,
                "{what}: not after {secs} s; external has {} entries; stats {:?}",
                s.ext_marks.len(),
                s.stats
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(self) {
        let _ = self.cmd.send(Cmd::Stop);
        self.thread.join().unwrap();
    }
}

fn entry(side: u8, i: u32, mark: u32) -> ConntrackRepr {
    let src = IpAddr::V4(Ipv4Addr::new(10, 100 + side, (i >> 8) as u8, i as u8));
    let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, side));
    let orig = Tuple::tcp(src, dst, 20000 + (i % 30000) as u16, 443);
    ConntrackRepr {
        family: 2,
        orig: Some(orig),
        reply: Some(orig.inverted()),
        status: Some(Status::SEEN_REPLY | Status::ASSURED),
        protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
            state: Some(TcpState::Established),
            ..TcpInfo::default()
        })),
        timeout: Some(600),
        mark: Some(mark),
        ..ConntrackRepr::default()
    }
}

fn veth(a: &Netns, b: &Netns) -> (Ipv4Addr, Ipv4Addr) {
    let (ia, ib) = (
        format!("s{}a", std::process::id()),
        format!("s{}b", std::process::id()),
    );
    let out = std::process::Command::new("ip")
        .args([
            "link",
            "add",
            &ia,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            &ib,
        ])
        .args(["netns", b.name()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (aa, ab) = (Ipv4Addr::new(10, 233, 0, 1), Ipv4Addr::new(10, 233, 0, 2));
    a.run("ip", &["addr", "add", "10.233.0.1/24", "dev", &ia]);
    b.run("ip", &["addr", "add", "10.233.0.2/24", "dev", &ib]);
    a.run("ip", &["link", "set", &ia, "up"]);
    b.run("ip", &["link", "set", &ib, "up"]);
    (aa, ab)
}

fn kernel_marks(ns: &Netns) -> Vec<u32> {
    let mut sock = ns.socket();
    let mut marks = Vec::new();
    let _ = sock
        .list(&DumpFilter::default(), |v| {
            if let Ok(Some(m)) = v.mark() {
                marks.push(m);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    marks.sort_unstable();
    marks
}

#[test]
fn ours_with_ours_loses_nothing_with_30_percent_loss_each_way() {
    const N: u32 = 3000;
    let (a, b) = (Netns::new("synca"), Netns::new("syncb"));
    let (ia, ib) = veth(&a, &b);
    a.nft(LOSS);
    b.nft(LOSS);
    let na = spawn(&a, ia, ib);
    let nb = spawn(&b, ib, ia);
    let t0 = Instant::now();

    // N entries on each side, made in bulk: marks 0..N on A, 1_000_000.. on B.
    let mut sa = a.socket();
    let mut sb = b.socket();
    let ea: Vec<_> = (0..N).map(|i| entry(1, i, i)).collect();
    let eb: Vec<_> = (0..N).map(|i| entry(2, i, 1_000_000 + i)).collect();
    sa.create_batch(&ea, 64, |_, r| r.unwrap()).unwrap();
    sb.create_batch(&eb, 64, |_, r| r.unwrap()).unwrap();

    let want_a: Vec<u32> = (0..N).collect();
    let want_b: Vec<u32> = (1_000_000..1_000_000 + N).collect();
    let sb_snap = nb.wait_for("A's entries in B's external cache", 60, |s| {
        s.ext_marks == want_a
    });
    let sa_snap = na.wait_for("B's entries in A's external cache", 60, |s| {
        s.ext_marks == want_b
    });
    println!(
        "{N} entries each way with 30% loss each way: complete after {:.1} s; \
         B lost {} and A lost {} datagram messages on the way in; A resent {}, B resent {}",
        t0.elapsed().as_secs_f64(),
        sb_snap.stats.rx_lost,
        sa_snap.stats.rx_lost,
        sa_snap.stats.tx_resent,
        sb_snap.stats.tx_resent,
    );
    assert!(sb_snap.stats.rx_lost > 0, "the loss rule dropped nothing");

    // Updates (mark) and deletes on A travel to B.
    let mut upd = Vec::new();
    for i in 0..N {
        if i % 3 == 0 {
            sa.delete(&conntrack_codec::ct::request::Key::orig(
                ea[i as usize].orig.unwrap(),
            ))
            .unwrap();
        } else if i % 3 == 1 {
            upd.push(ConntrackRepr {
                family: 2,
                orig: ea[i as usize].orig,
                mark: Some(500_000 + i),
                ..ConntrackRepr::default()
            });
        }
    }
    sa.update_batch(&upd, 64, |_, r| r.unwrap()).unwrap();
    let mut want: Vec<u32> = (0..N)
        .filter(|i| i % 3 != 0)
        .map(|i| if i % 3 == 1 { 500_000 + i } else { i })
        .collect();
    want.sort_unstable();
    nb.wait_for("A's updates and deletes in B", 60, |s| s.ext_marks == want);

    // Commit on B: A's entries (as they are now) join B's own in B's kernel table.
    nb.cmd.send(Cmd::Commit).unwrap();
    let s = nb.wait_for("commit on B", 60, |s| s.committed.is_some());
    let (ok, failed) = s.committed.unwrap();
    assert_eq!((ok, failed), (want.len() as u64, 0));
    let mut all = want.clone();
    all.extend(want_b.iter());
    all.sort_unstable();
    assert_eq!(kernel_marks(&b), all);

    na.stop();
    nb.stop();
}
