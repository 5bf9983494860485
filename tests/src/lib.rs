//! Support for the integration tests: throwaway network namespaces.
//!
//! Every live test runs in its own network namespace, created here and removed on drop, so
//! tests can run in parallel and never touch the host's conntrack table.

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
