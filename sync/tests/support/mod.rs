//! What the live sync tests share: two throwaway namespaces joined by veth pairs, a node of
//! ours running in a thread inside one of them, Debian's conntrackd running in one, and the
//! entries they replicate. Nothing leaves the namespaces; everything made here goes away on
//! drop (namespaces, daemons, their files).

#![allow(dead_code)]

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::filter::DumpFilter;
use conntrack_codec::sync::SyncCt;
use conntrack_sync::{ChannelConfig, LinkInfo, Node, NodeConfig, NodeStats, Stats, Transport};
pub use conntrack_tests::Netns;
use nix::sched::{setns, CloneFlags};

/// The UDP port of the sync traffic.
pub const PORT: u16 = 3780;

/// One veth pair between the two namespaces, with an IPv4 and an IPv6 address at each end.
#[derive(Debug, Clone)]
pub struct Veth {
    /// The interface in A.
    pub if_a: String,
    /// The interface in B.
    pub if_b: String,
    /// A's and B's IPv4 addresses.
    pub v4: (Ipv4Addr, Ipv4Addr),
    /// A's and B's IPv6 addresses.
    pub v6: (Ipv6Addr, Ipv6Addr),
}

impl Veth {
    /// A's address of the family.
    pub fn a(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(self.v6.0)
        } else {
            IpAddr::V4(self.v4.0)
        }
    }

    /// B's address of the family.
    pub fn b(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(self.v6.1)
        } else {
            IpAddr::V4(self.v4.1)
        }
    }
}

/// Two namespaces and the links between them.
pub struct Pair {
    /// Namespace A.
    pub a: Netns,
    /// Namespace B.
    pub b: Netns,
    /// The links, first made first.
    pub links: Vec<Veth>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Pair {
    /// Two fresh namespaces joined by one veth pair.
    pub fn new(tag: &str) -> Pair {
        let mut p = Pair {
            a: Netns::new(&format!("{tag}a")),
            b: Netns::new(&format!("{tag}b")),
            links: Vec::new(),
        };
        p.add_link();
        p
    }

    /// Adds a veth pair; its addresses are 10.N.0.1/2 and fd00:N::1/2 for a subnet N of
    /// its own.
    pub fn add_link(&mut self) -> Veth {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = std::process::id() % 100_000;
        let (if_a, if_b) = (format!("s{id}x{n}a"), format!("s{id}x{n}b"));
        let out = Command::new("ip")
            .args(["link", "add", &if_a, "netns", self.a.name()])
            .args([
                "type",
                "veth",
                "peer",
                "name",
                &if_b,
                "netns",
                self.b.name(),
            ])
            .output()
            .expect("ip link add");
        assert!(
            out.status.success(),
            "ip link add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let subnet = 100 + (id as u8 % 50) + (n as u8 % 100);
        let v4 = (
            Ipv4Addr::new(10, subnet, n as u8, 1),
            Ipv4Addr::new(10, subnet, n as u8, 2),
        );
        let v6 = (
            Ipv6Addr::new(0xfd00, u16::from(subnet), n as u16, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0xfd00, u16::from(subnet), n as u16, 0, 0, 0, 0, 2),
        );
        for (ns, ifname, a4, a6) in [(&self.a, &if_a, v4.0, v6.0), (&self.b, &if_b, v4.1, v6.1)] {
            // No duplicate address detection: the link-local address (the source of
            // link-scope multicast) is there as soon as the link is up.
            ns.sysctl(&format!("net.ipv6.conf.{ifname}.accept_dad"), "0");
            ns.run("ip", &["addr", "add", &format!("{a4}/24"), "dev", ifname]);
            ns.run(
                "ip",
                &["addr", "add", &format!("{a6}/64"), "dev", ifname, "nodad"],
            );
            ns.run("ip", &["link", "set", ifname, "up"]);
        }
        // Wait for the carrier (veth reports it a little after both ends are up) and the
        // IPv6 multicast route that comes with it: a daemon that sends before loses what
        // it sends (conntrackd never recovers messages lost before its peer's first one).
        let end = Instant::now() + Duration::from_secs(10);
        for (ns, ifname) in [(&self.a, &if_a), (&self.b, &if_b)] {
            loop {
                let link = ns.run("ip", &["link", "show", ifname]);
                let routes = ns.run("ip", &["-6", "route", "show", "table", "local"]);
                let ready = link.contains("LOWER_UP")
                    && !link.contains("NO-CARRIER")
                    && routes.contains(&format!("ff00::/8 dev {ifname}"));
                if ready {
                    break;
                }
                assert!(Instant::now() < end, "{ifname} never came up: {link}");
                thread::sleep(Duration::from_millis(20));
            }
        }
        let link = Veth { if_a, if_b, v4, v6 };
        self.links.push(link.clone());
        link
    }
}

/// What a running node shows the test, refreshed every 100 ms.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// The marks of the conntrack entries of the external cache, sorted.
    pub ext_marks: Vec<u32>,
    /// How many expectations the external cache holds.
    pub ext_exp: usize,
    /// How many live entries the internal cache holds.
    pub int_len: usize,
    /// The engine's counters.
    pub stats: Stats,
    /// The shell's counters.
    pub node: NodeStats,
    /// The links.
    pub links: Vec<LinkInfo>,
}

type Job = Box<dyn FnOnce(&mut Node) + Send>;

enum Cmd {
    Do(Job),
    Stop,
}

/// A node of ours running in a thread inside a namespace.
pub struct Running {
    cmd: mpsc::Sender<Cmd>,
    snap: Arc<Mutex<Snapshot>>,
    thread: Option<thread::JoinHandle<()>>,
}

fn snapshot(node: &Node) -> Snapshot {
    let mut marks: Vec<u32> = node
        .engine()
        .external()
        .filter(|e| !e.expect)
        .filter_map(|e| SyncCt::new_checked(&e.attrs).ok()?.to_repr().ok()?.mark)
        .collect();
    marks.sort_unstable();
    Snapshot {
        ext_marks: marks,
        ext_exp: node.engine().external_exp_len(),
        int_len: node.engine().internal().count(),
        stats: node.engine().stats(),
        node: node.stats(),
        links: node.links(),
    }
}

/// Starts a node with `cfg` inside `ns`.
pub fn spawn(ns: &Netns, cfg: NodeConfig) -> Running {
    let path = ns.path();
    let snap = Arc::new(Mutex::new(Snapshot::default()));
    let (cmd, rx) = mpsc::channel::<Cmd>();
    let s2 = snap.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        setns(
            File::open(&path).expect("open netns"),
            CloneFlags::CLONE_NEWNET,
        )
        .expect("setns");
        let mut node = match Node::start(cfg) {
            Ok(n) => n,
            Err(e) => {
                ready_tx.send(Err(e.to_string())).unwrap();
                return;
            }
        };
        ready_tx.send(Ok(())).unwrap();
        let mut last = Instant::now() - Duration::from_secs(1);
        loop {
            node.run_once(10).expect("run");
            match rx.try_recv() {
                Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => break,
                Ok(Cmd::Do(job)) => {
                    job(&mut node);
                    last = Instant::now() - Duration::from_secs(1);
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if last.elapsed() > Duration::from_millis(100) {
                last = Instant::now();
                *s2.lock().unwrap() = snapshot(&node);
            }
        }
    });
    match ready_rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("node did not start: {e}"),
        Err(e) => panic!("node did not start: {e}"),
    }
    Running {
        cmd,
        snap,
        thread: Some(thread),
    }
}

impl Running {
    /// The latest snapshot.
    pub fn snap(&self) -> Snapshot {
        self.snap.lock().unwrap().clone()
    }

    /// Waits until `f` holds for a snapshot, or fails the test after `secs` seconds.
    pub fn wait_for(&self, what: &str, secs: u64, f: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.snap();
            if f(&s) {
                return s;
            }
            assert!(
                Instant::now() < end,
                "{what}: not after {secs} s; external has {} entries; stats {:?}; node {:?}",
                s.ext_marks.len(),
                s.stats,
                s.node
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `f` on the node in its thread and returns what it returns.
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce(&mut Node) -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        self.cmd
            .send(Cmd::Do(Box::new(move |n| {
                let _ = tx.send(f(n));
            })))
            .expect("node thread alive");
        rx.recv_timeout(Duration::from_secs(60))
            .expect("node answered")
    }

    /// Stops the node and waits for its thread.
    pub fn stop(mut self) {
        let _ = self.cmd.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub use conntrack_tests::sync::entry;

/// Makes `n` entries of side `side` in the namespace, marks `base..base+n`.
pub fn make_entries(ns: &Netns, side: u8, n: u32, base: u32) -> Vec<ConntrackRepr> {
    make_entries_from(ns, side, 0, n, base)
}

/// Makes entries `first..first+n` of side `side` in the namespace, marks `base..base+n`.
pub fn make_entries_from(
    ns: &Netns,
    side: u8,
    first: u32,
    n: u32,
    base: u32,
) -> Vec<ConntrackRepr> {
    let e: Vec<_> = (0..n).map(|i| entry(side, first + i, base + i)).collect();
    ns.socket()
        .create_batch(&e, 64, |_, r| r.expect("create"))
        .expect("create batch");
    e
}

/// The marks of the namespace's conntrack table, sorted.
pub fn kernel_marks(ns: &Netns) -> Vec<u32> {
    let mut sock = ns.socket();
    let mut marks = Vec::new();
    let _ = sock
        .list(&DumpFilter::default(), |v| {
            if let Ok(Some(m)) = v.mark() {
                marks.push(m);
            }
            ControlFlow::Continue(())
        })
        .expect("dump");
    marks.sort_unstable();
    marks
}

/// Empties the namespace's conntrack table.
pub fn flush_table(ns: &Netns) {
    ns.socket()
        .flush(&DumpFilter::default())
        .expect("flush the table");
}

/// The range `base..base+n` as a vector, for comparisons.
pub fn range(base: u32, n: u32) -> Vec<u32> {
    (base..base + n).collect()
}

/// Fails the test unless Debian's conntrackd is here: the tests that pair with it are not
/// passed off as green without it.
pub fn need_conntrackd() {
    assert!(
        std::path::Path::new("/usr/sbin/conntrackd").exists(),
        "/usr/sbin/conntrackd (Debian package conntrackd) is needed for this test; .ci/run installs it"
    );
}

/// conntrackd's text for a link of `transport` from `local` to `peer` on `iface` (for
/// multicast: group 225.0.0.50 or ff12::3780 on the interface).
pub fn ctd_channel(transport: Transport, local: IpAddr, peer: IpAddr, iface: &str) -> String {
    let v = if local.is_ipv6() { "IPv6" } else { "IPv4" };
    match transport {
        Transport::Udp | Transport::Tcp => format!(
            "{} {{\n {v}_address {local}\n {v}_Destination_Address {peer}\n Port {PORT}\n \
             Interface {iface}\n Checksum on\n}}\n",
            if transport == Transport::Udp {
                "UDP"
            } else {
                "TCP"
            }
        ),
        Transport::Multicast => {
            if local.is_ipv6() {
                format!(
                    "Multicast {{\n IPv6_address {}\n Group {PORT}\n Interface {iface}\n \
                     Checksum on\n}}\n",
                    mcast_group(true)
                )
            } else {
                format!(
                    "Multicast {{\n IPv4_address {}\n Group {PORT}\n IPv4_interface {local}\n \
                     Interface {iface}\n Checksum on\n}}\n",
                    mcast_group(false)
                )
            }
        }
    }
}

/// Our node's link of `transport` on `l`, as side A (`a`) or B: unicast between the two
/// addresses of the family, or the test group on the interface.
pub fn our_channel(transport: Transport, v6: bool, l: &Veth, a: bool) -> ChannelConfig {
    let (local, peer, iface) = if a {
        (l.a(v6), l.b(v6), &l.if_a)
    } else {
        (l.b(v6), l.a(v6), &l.if_b)
    };
    let (local_sa, peer_sa) = (SocketAddr::new(local, PORT), SocketAddr::new(peer, PORT));
    match transport {
        Transport::Udp => ChannelConfig::udp(local_sa, peer_sa),
        Transport::Tcp => ChannelConfig::tcp(local_sa, peer_sa),
        Transport::Multicast => {
            let mut c = ChannelConfig::multicast(mcast_group(v6), PORT, iface);
            if let IpAddr::V4(a) = local {
                c.ipv4_interface = Some(a);
            }
            c
        }
    }
    .on_interface(iface)
}

/// The multicast group the tests use.
pub fn mcast_group(v6: bool) -> IpAddr {
    if v6 {
        "ff12::3780".parse().unwrap()
    } else {
        "225.0.0.50".parse().unwrap()
    }
}

/// Debian's conntrackd running in a namespace with a configuration of its own.
pub struct Conntrackd {
    child: Child,
    /// Its directory (configuration, lock, socket, log).
    pub dir: PathBuf,
    /// Its configuration file.
    pub conf: PathBuf,
    ns: String,
}

impl Conntrackd {
    /// Starts conntrackd in `ns` with a `Sync` section made of `mode_section` (e.g.
    /// `Mode FTFW { }`) and `channel` (see [`ctd_channel`]), plus `extra_sync` lines, and
    /// waits for its control socket.
    pub fn start(ns: &Netns, mode_section: &str, channel: &str, extra_sync: &str) -> Conntrackd {
        Self::with_conf(ns, &[], |d| {
            format!(
                "Sync {{\n{mode_section}\n{channel}\n{extra_sync}\n}}\nGeneral {{\n HashSize 8192\n \
                 HashLimit 262144\n LogFile {d}/ctd.log\n Syslog off\n LockFile {d}/ctd.lock\n \
                 UNIX {{ Path {d}/ctd.ctl }}\n NetlinkBufferSize 2097152\n \
                 NetlinkBufferSizeMaxGrowth 8388608\n}}\n"
            )
        })
    }

    /// Starts conntrackd in `ns` (with the `NAME=VALUE` pairs of `env` in its environment)
    /// with the configuration `text` makes from its directory; the configuration must put
    /// `LockFile`, `UNIX { Path }` there as `ctd.lock` and `ctd.ctl`. Waits for the
    /// control socket.
    pub fn with_conf(ns: &Netns, env: &[&str], text: impl FnOnce(&str) -> String) -> Conntrackd {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ctd-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("ctd.conf");
        std::fs::write(&conf, text(dir.to_str().unwrap())).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "env"])
            .args(env)
            .args(["conntrackd", "-C"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start conntrackd");
        let c = Conntrackd {
            child,
            dir: dir.clone(),
            conf,
            ns: ns.name().to_string(),
        };
        let end = Instant::now() + Duration::from_secs(15);
        while !dir.join("ctd.ctl").exists() {
            assert!(
                Instant::now() < end,
                "conntrackd did not start: {}",
                std::fs::read_to_string(dir.join("ctd.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// Runs `conntrackd -C CONF ARGS` in its namespace.
    pub fn client(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "conntrackd", "-C"])
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("run conntrackd client")
    }

    /// The marks of its external cache (`-e`), sorted.
    pub fn ext_marks(&self) -> Vec<u32> {
        let out = self.client(&["-e"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v: Vec<u32> = text
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("mark=")?.parse().ok())
            .collect();
        v.sort_unstable();
        v
    }

    /// Waits until its external cache holds exactly `want` (marks, sorted).
    pub fn wait_ext(&self, what: &str, secs: u64, want: &[u32]) {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.ext_marks();
            if got == want {
                return;
            }
            assert!(
                Instant::now() < end,
                "{what}: conntrackd -e has {} of {} entries; log:\n{}",
                got.len(),
                want.len(),
                self.log()
            );
            thread::sleep(Duration::from_millis(300));
        }
    }

    /// Its log file.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ctd.log")).unwrap_or_default()
    }
}

impl Drop for Conntrackd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Captures, in `ns`, the UDP checksums of up to `count` IPv4 datagrams from `src` to port
/// `port` seen within `secs` seconds (an `AF_PACKET` socket of the namespace).
pub fn capture_udp_checksums(
    ns: &Netns,
    src: Ipv4Addr,
    port: u16,
    count: usize,
    secs: u64,
) -> thread::JoinHandle<Vec<u16>> {
    use nix::sys::socket::{
        recv, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
    };
    use std::os::fd::AsRawFd;
    let path = ns.path();
    let (ready_tx, ready_rx) = mpsc::channel();
    let h = thread::spawn(move || {
        setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
        let fd = socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK,
            SockProtocol::EthAll,
        )
        .expect("AF_PACKET socket");
        ready_tx.send(()).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        let end = Instant::now() + Duration::from_secs(secs);
        while out.len() < count && Instant::now() < end {
            let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(_) => {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            let p = &buf[..n];
            if n < 28 || p[0] >> 4 != 4 || p[9] != 17 || p[12..16] != src.octets() {
                continue;
            }
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let Some(udp) = p.get(ihl..ihl + 8) else {
                continue;
            };
            if u16::from_be_bytes([udp[2], udp[3]]) == port {
                out.push(u16::from_be_bytes([udp[6], udp[7]]));
            }
        }
        out
    });
    ready_rx.recv().unwrap();
    h
}
