//! Ours paired with Debian's conntrackd 1.4.7 over a veth pair between two throwaway
//! namespaces: conntrackd's entries reach our external cache, ours reach conntrackd's
//! (`conntrackd -e`). Skipped, saying so, when /usr/sbin/conntrackd is not installed.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use conntrack_codec::ct::{ConntrackRepr, ProtoInfo, Status, TcpInfo, TcpState, Tuple};
use conntrack_codec::sync::SyncCt;
use conntrack_sync::{Node, NodeConfig};
use conntrack_tests::Netns;
use nix::sched::{setns, CloneFlags};

const CONF: &str = "Sync {
    Mode FTFW { }
    UDP {
        IPv4_address 10.234.0.1
        IPv4_Destination_Address 10.234.0.2
        Port 3780
        Interface IFNAME
        Checksum on
    }
}
General {
    HashSize 8192
    HashLimit 65536
    LogFile DIR/ctd.log
    Syslog off
    LockFile DIR/ctd.lock
    UNIX { Path DIR/ctd.ctl }
    NetlinkBufferSize 2097152
    NetlinkBufferSizeMaxGrowth 8388608
}
";

fn entry(side: u8, i: u32) -> ConntrackRepr {
    let src = IpAddr::V4(Ipv4Addr::new(10, 100 + side, (i >> 8) as u8, i as u8));
    let orig = Tuple::tcp(
        src,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, side)),
        20000 + i as u16,
        443,
    );
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
        mark: Some(u32::from(side) * 100_000 + i),
        ..ConntrackRepr::default()
    }
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ours_and_conntrackd_exchange_entries_both_ways() {
    if !std::path::Path::new("/usr/sbin/conntrackd").exists() {
        println!("SKIPPED: /usr/sbin/conntrackd is not installed (Debian package conntrackd)");
        return;
    }
    const N: u32 = 500;
    let (a, b) = (Netns::new("ctda"), Netns::new("ctdb"));
    let (ia, ib) = (
        format!("c{}a", std::process::id()),
        format!("c{}b", std::process::id()),
    );
    let out = Command::new("ip")
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
    a.run("ip", &["addr", "add", "10.234.0.1/24", "dev", &ia]);
    b.run("ip", &["addr", "add", "10.234.0.2/24", "dev", &ib]);
    a.run("ip", &["link", "set", &ia, "up"]);
    b.run("ip", &["link", "set", &ib, "up"]);

    // conntrackd in A.
    let dir = std::env::temp_dir().join(format!("ctd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("ctd.conf");
    std::fs::write(
        &conf,
        CONF.replace("IFNAME", &ia)
            .replace("DIR", dir.to_str().unwrap()),
    )
    .unwrap();
    let _ctd = Daemon(
        Command::new("ip")
            .args(["netns", "exec", a.name(), "conntrackd", "-C"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Our node in B.
    let path = b.path();
    let ext = Arc::new(Mutex::new(Vec::<u32>::new()));
    let ext2 = ext.clone();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let node = thread::spawn(move || {
        setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
        let cfg = NodeConfig::new(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 234, 0, 2)), 3780),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 234, 0, 1)), 3780),
        );
        let mut node = Node::start(cfg).unwrap();
        let mut last = Instant::now();
        while stop_rx.try_recv().is_err() {
            node.run_once(20).unwrap();
            if last.elapsed() > Duration::from_millis(200) {
                last = Instant::now();
                let mut m: Vec<u32> = node
                    .engine()
                    .external()
                    .filter_map(|e| SyncCt::new_checked(&e.attrs).ok()?.to_repr().ok()?.mark)
                    .collect();
                m.sort_unstable();
                *ext2.lock().unwrap() = m;
            }
        }
    });
    thread::sleep(Duration::from_millis(1500));

    let ea: Vec<_> = (0..N).map(|i| entry(1, i)).collect();
    let eb: Vec<_> = (0..N).map(|i| entry(2, i)).collect();
    a.socket().create_batch(&ea, 64, |_, r| r.unwrap()).unwrap();
    b.socket().create_batch(&eb, 64, |_, r| r.unwrap()).unwrap();

    // conntrackd -> ours.
    let want: Vec<u32> = (0..N).map(|i| 100_000 + i).collect();
    let end = Instant::now() + Duration::from_secs(30);
    while *ext.lock().unwrap() != want {
        assert!(
            Instant::now() < end,
            "conntrackd's entries in our external cache: {} of {N}",
            ext.lock().unwrap().len()
        );
        thread::sleep(Duration::from_millis(200));
    }

    // ours -> conntrackd: `conntrackd -e` lists them.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let out = a.exec("conntrackd", &["-C", conf.to_str().unwrap(), "-e"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let got = (0..N)
            .filter(|i| text.contains(&format!("mark={} ", 200_000 + i)))
            .count();
        if got == N as usize {
            println!("{N} entries each way between ours and conntrackd 1.4.7");
            break;
        }
        assert!(
            Instant::now() < end,
            "our entries in conntrackd -e: {got} of {N}"
        );
        thread::sleep(Duration::from_millis(300));
    }
    stop_tx.send(()).unwrap();
    node.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
