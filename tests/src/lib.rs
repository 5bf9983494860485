//! Support for the integration tests: throwaway network namespaces.
//!
//! Every live test runs in its own network namespace, created here and removed on drop, so
//! tests can run in parallel and never touch the host's conntrack table.

pub mod alloc;
pub mod scenario;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use conntrack_io::Socket;

/// A network namespace made with `ip netns add`, deleted again on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a fresh namespace whose name starts with `tag`, with `lo` up.
    ///
    /// # Panics
    /// If `ip netns add` fails: a live test cannot run without it.
    pub fn new(tag: &str) -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("ctrs-{tag}-{}-{n}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns { name };
        ns.run("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's path, for `setns`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// Opens a conntrack socket inside the namespace.
    ///
    /// # Panics
    /// If the socket cannot be opened.
    pub fn socket(&self) -> Socket {
        Socket::open_in_netns(self.path()).expect("open socket in namespace")
    }

    /// Runs a command inside the namespace and returns its output.
    ///
    /// # Panics
    /// If the command cannot be started.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program} in {}: {e}", self.name))
    }

    /// Runs a command inside the namespace and returns its stdout.
    ///
    /// # Panics
    /// If the command fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.exec(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Loads an nftables ruleset (the text of an `nft -f` file) into the namespace.
    ///
    /// # Panics
    /// If `nft` refuses it.
    pub fn nft(&self, ruleset: &str) {
        let path = std::env::temp_dir().join(format!("{}.nft", self.name));
        std::fs::write(&path, ruleset).expect("write the ruleset");
        let out = self.exec("nft", &["-f", path.to_str().expect("utf-8 path")]);
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "nft -f in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Sets a sysctl inside the namespace (`net.netfilter.nf_conntrack_acct=1`, ...).
    ///
    /// # Panics
    /// If `sysctl` fails.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.run("sysctl", &["-q", "-w", &format!("{key}={value}")]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Sends one dump request and returns every message of the reply (up to and excluding
/// `NLMSG_DONE`) as owned bytes. A deliberately plain reader for tests that compare
/// against other tools; the streaming dump lives in `conntrack-io`.
///
/// # Panics
/// On any socket error, a truncated datagram, or a kernel error reply.
pub fn raw_dump(sock: &Socket, request: &[u8]) -> Vec<Vec<u8>> {
    use conntrack_codec::nl::{Control, Messages};
    sock.send(request).expect("send dump request");
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Vec::new();
    loop {
        let d = sock.recv(&mut buf).expect("recv");
        assert!(!d.truncated, "dump datagram truncated");
        assert_eq!(d.sender, 0, "reply not from the kernel");
        for m in Messages::new(&buf[..d.len]) {
            let m = m.expect("malformed message from the kernel");
            match m.control().expect("malformed control message") {
                Some(Control::Done(d)) => {
                    assert_eq!(d.errno(), 0, "dump failed");
                    return out;
                }
                Some(Control::Error(e)) => panic!("dump failed: errno {}", e.errno()),
                Some(_) => {}
                None => out.push(m.bytes().to_vec()),
            }
        }
    }
}

/// The label map conntrack-tools 1.4.7 reads (its path is fixed).
pub const CONNLABEL_CONF: &str = "/etc/xtables/connlabel.conf";

/// Makes sure conntrack-tools has a label map and returns it as parsed by the codec.
///
/// If [`CONNLABEL_CONF`] is absent it is created with names for bits 0, 5 and 64 (bit 9 and
/// others stay unnamed), and left in place for later tests; an existing file is used as it
/// is. The flag tells whether a map is loaded.
///
/// # Panics
/// If the file cannot be written or read, or does not parse.
pub fn connlabel_conf() -> (conntrack_codec::labels::LabelMap, bool) {
    let path = std::path::Path::new(CONNLABEL_CONF);
    if !path.exists() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create /etc/xtables");
        let text = "# written by the conntrack-rs tests\n0 zero\n5 five\n64 big\n";
        // Write then rename, so a concurrent reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text).expect("write connlabel.conf");
        std::fs::rename(&tmp, path).expect("install connlabel.conf");
    }
    let text = std::fs::read_to_string(path).expect("read connlabel.conf");
    let map = conntrack_codec::labels::LabelMap::parse(&text).expect("parse connlabel.conf");
    (map, true)
}

/// The errno of a kernel refusal.
///
/// # Panics
/// If `r` is not a kernel error.
pub fn kernel_errno<T: std::fmt::Debug>(r: Result<T, conntrack_io::Error>) -> conntrack_io::Errno {
    match r {
        Err(conntrack_io::Error::Kernel(k)) => k.errno,
        other => panic!("expected a kernel error, got {other:?}"),
    }
}

/// Entry `i` of the tables the allocation tests fill: an IPv4 TCP flow, as `ctbench` makes
/// them (distinct for every `i` below 2^32).
pub fn bench_entry(i: u32) -> conntrack_codec::ct::ConntrackRepr {
    use conntrack_codec::ct::{ConntrackRepr, Tuple};
    let orig = Tuple::tcp(
        std::net::Ipv4Addr::from(0x0a00_0000 | (i >> 16)).into(),
        std::net::Ipv4Addr::from(0x0b00_0000 | (i & 0xffff)).into(),
        u16::try_from(1024 + i % 60000).expect("port"),
        80,
    );
    ConntrackRepr {
        family: 2,
        orig: Some(orig),
        reply: Some(orig.inverted()),
        timeout: Some(600),
        mark: Some(i),
        ..ConntrackRepr::default()
    }
}

/// Creates entries [`bench_entry`]`(from..to)` in bulk, with per-datagram acknowledgements;
/// panics if one fails.
pub fn bulk_create(sock: &mut Socket, from: u32, to: u32) {
    let n = usize::try_from(to - from).expect("count");
    let summary = sock
        .bulk_with_acks(
            n,
            1024,
            conntrack_io::Acks::PerDatagram,
            |i, w, seq| {
                let i = u32::try_from(i).expect("index");
                conntrack_codec::ct::request::create(w, seq, &bench_entry(from + i)).map(drop)
            },
            |i, r| r.unwrap_or_else(|e| panic!("create {i}: {e}")),
        )
        .expect("bulk");
    assert_eq!(summary.succeeded, n);
}
