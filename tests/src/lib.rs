//! Support for the integration tests: throwaway network namespaces.
//!
//! Every live test runs in its own network namespace, created here and removed on drop, so
//! tests can run in parallel and never touch the host's conntrack table.
//!
//! Every command a test runs in a namespace ([`Netns::command`], [`Netns::exec`],
//! [`Netns::run`]) also runs in a private mount namespace of that [`Netns`], where `/etc` is
//! an overlay whose `xtables/connlabel.conf` is the tests' own label map ([`LABEL_MAP`]):
//! conntrack-tools 1.4.7 reads label names only from that fixed path, and our programs read
//! the same one by default, so both tools see the same names while the host's `/etc` is
//! never written.

pub mod alloc;
pub mod cli_golden;
pub mod scenario;
pub mod sync;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use conntrack_io::Socket;

/// The label map conntrack-tools 1.4.7 reads (its path is fixed).
pub const CONNLABEL_CONF: &str = "/etc/xtables/connlabel.conf";

/// The tests' label map: names for bits 0, 5 and 64 (bit 9 and the others stay unnamed). In
/// every command run through a [`Netns`] it is the content of [`CONNLABEL_CONF`].
pub const LABEL_MAP: &str = "# the conntrack-rs tests' own label map\n0 zero\n5 five\n64 big\n";

/// [`LABEL_MAP`] as parsed by the codec.
///
/// # Panics
/// Never: the map is a constant that parses (a unit test checks it).
pub fn label_map() -> conntrack_codec::labels::LabelMap {
    conntrack_codec::labels::LabelMap::parse(LABEL_MAP).expect("the tests' label map parses")
}

/// Sets up the private mount namespace of a [`Netns`]; `unshare --mount` runs it with the
/// scratch directory and the label map as arguments. A tmpfs on the scratch directory holds
/// the upper layer of an overlay with `xtables/connlabel.conf`; the overlay goes on `/etc`;
/// then the process waits for its stdin to close. Mounts propagate from the host into the
/// namespace (so `ip netns del` reaches it) but not back.
const MOUNT_NS_SCRIPT: &str = r#"set -e
dir=$1
mount -t tmpfs -o size=1m,mode=0755 ctrs-etc "$dir"
mkdir -p "$dir/upper/xtables" "$dir/work"
printf '%s' "$2" > "$dir/upper/xtables/connlabel.conf"
mount -t overlay -o "lowerdir=/etc,upperdir=$dir/upper,workdir=$dir/work" ctrs-etc /etc
echo ready
exec cat >/dev/null
"#;

/// The private mount namespace of a [`Netns`], held by a process that exits when its stdin
/// closes (on drop, or when the test process dies), which ends the namespace.
#[derive(Debug)]
struct MountNs {
    holder: Child,
    stdin: Option<ChildStdin>,
    /// The scratch directory: an empty mount point on the host.
    dir: PathBuf,
}

impl MountNs {
    fn new(tag: &str) -> MountNs {
        let dir = std::env::temp_dir().join(format!("{tag}.etc"));
        std::fs::create_dir_all(&dir).expect("create the mount namespace's scratch directory");
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "slave", "--", "sh", "-c"])
            .arg(MOUNT_NS_SCRIPT)
            .arg("sh")
            .arg(&dir)
            .arg(LABEL_MAP)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run unshare (util-linux)");
        let stdin = holder.stdin.take();
        let mut line = String::new();
        if let Some(out) = holder.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        if line.trim() != "ready" {
            let mut err = String::new();
            if let Some(mut e) = holder.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            drop(stdin);
            let _ = holder.wait();
            let _ = std::fs::remove_dir(&dir);
            panic!("cannot set up a private /etc (tmpfs and overlay in a mount namespace): {err}");
        }
        MountNs { holder, stdin, dir }
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A network namespace made with `ip netns add`, deleted again on drop, with a private mount
/// namespace for the commands run in it (see the crate documentation).
#[derive(Debug)]
pub struct Netns {
    name: String,
    mounts: Option<MountNs>,
}

impl Netns {
    /// Creates a fresh namespace whose name starts with `tag`, with `lo` up.
    ///
    /// # Panics
    /// If `ip netns add` fails, or the private mount namespace cannot be set up: a live test
    /// cannot run without them.
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
        let mut ns = Netns { name, mounts: None };
        ns.mounts = Some(MountNs::new(&ns.name));
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

    /// A command that runs `program` inside the namespace and its private mount namespace
    /// (where [`CONNLABEL_CONF`] is the tests' label map), in the caller's working directory;
    /// add arguments and pipes as usual.
    pub fn command(&self, program: &str) -> Command {
        let mut c = match &self.mounts {
            Some(m) => {
                let mut c = Command::new("nsenter");
                // `--wd=.` opens the working directory before entering, and returns to it.
                c.arg(format!("--mount=/proc/{}/ns/mnt", m.holder.id()))
                    .args(["--wd=.", "--", "ip"]);
                c
            }
            None => Command::new("ip"),
        };
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs a command inside the namespace and returns its output.
    ///
    /// # Panics
    /// If the command cannot be started.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
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
        // The mount namespace goes first: it holds a reference to the network namespace.
        drop(self.mounts.take());
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

/// A `NETLINK_NETFILTER` socket of a process, as its network namespace's netlink table
/// (`/proc/PID/net/netlink`) lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetlinkSocket {
    /// The port id.
    pub portid: u32,
    /// The first 32 multicast groups it joined, as a bit mask.
    pub groups: u32,
    /// Bytes queued for reading.
    pub rmem: u64,
    /// Messages the kernel could not queue (the drop counter).
    pub drops: u64,
}

/// The `NETLINK_NETFILTER` sockets process `pid` holds (none if it is gone): the rows of its
/// namespace's netlink table whose inode is one of its descriptors.
pub fn netfilter_sockets(pid: u32) -> Vec<NetlinkSocket> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| {
                let link = std::fs::read_link(e.ok()?.path()).ok()?;
                let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
                Some(inode.to_string())
            })
            .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/netlink")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[1] != "12" || !inodes.iter().any(|i| i == f[9]) {
                return None;
            }
            Some(NetlinkSocket {
                portid: f[2].parse().ok()?,
                groups: u32::from_str_radix(f[3], 16).ok()?,
                rmem: f[4].parse().ok()?,
                drops: f[8].parse().ok()?,
            })
        })
        .collect()
}

/// Entry `i` of the load tests: TCP from 10.0.0.0/8 (`10.0.0.0` + `i`) to 192.0.2.1:80,
/// seen in both directions, ten minutes of timeout.
pub fn tcp_entry(i: u32) -> conntrack_codec::ct::ConntrackRepr {
    use conntrack_codec::ct::{ConntrackRepr, Status, Tuple};
    use std::net::{IpAddr, Ipv4Addr};
    let t = Tuple::tcp(
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        40000,
        80,
    );
    ConntrackRepr {
        orig: Some(t),
        reply: Some(t.inverted()),
        status: Some(Status::SEEN_REPLY),
        timeout: Some(600),
        ..ConntrackRepr::default()
    }
}

/// `setpriv` arguments that run the program after them as user `nobody`, without any
/// capability: `ns.run("setpriv", &[NOBODY, &[program, ...]].concat())`.
pub const NOBODY: [&str; 5] = [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
];

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_label_map_names_bits_0_5_and_64() {
        let map = super::label_map();
        assert_eq!(map.name(0), Some("zero"));
        assert_eq!(map.name(5), Some("five"));
        assert_eq!(map.name(64), Some("big"));
        assert_eq!(map.name(9), None);
    }
}
