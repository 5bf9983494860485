//! The test support leaves the host's `/etc` as it found it: the commands a test runs in a
//! [`Netns`] see the tests' own label map at the path conntrack-tools 1.4.7 reads, and what
//! they write under `/etc` stays in their private mount namespace and goes with it.
//!
//! Live: runs as root in a throwaway network namespace.

use std::path::Path;

use conntrack_tests::{Netns, CONNLABEL_CONF, LABEL_MAP};

fn host_file(path: &str) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

#[test]
fn commands_see_the_tests_label_map_and_write_nothing_to_the_host() {
    let before = host_file(CONNLABEL_CONF);
    let probe = format!("/etc/ctrs-write-probe-{}", std::process::id());
    assert!(!Path::new(&probe).exists(), "{probe} exists already");

    let ns = Netns::new("etc");
    assert_eq!(ns.run("cat", &[CONNLABEL_CONF]), LABEL_MAP);
    // A tool that writes under /etc writes into the namespace's overlay only.
    ns.run("sh", &["-c", &format!("echo written > {probe}")]);
    assert_eq!(ns.run("cat", &[&probe]), "written\n");
    assert!(!Path::new(&probe).exists(), "{probe} reached the host");
    // Everything else of /etc is the host's.
    assert_eq!(
        ns.run("cat", &["/etc/passwd"]).into_bytes(),
        std::fs::read("/etc/passwd").expect("read /etc/passwd")
    );
    // The commands run where the caller is.
    let here = std::env::current_dir().expect("working directory");
    assert_eq!(ns.run("pwd", &[]).trim_end(), here.to_str().expect("utf-8"));

    let scratch = std::env::temp_dir().join(format!("{}.etc", ns.name()));
    assert!(scratch.is_dir(), "the scratch mount point {scratch:?}");
    drop(ns);
    assert!(!scratch.exists(), "{scratch:?} left behind");
    assert_eq!(
        host_file(CONNLABEL_CONF),
        before,
        "the host's label map changed"
    );
    println!(
        "label map in the namespace: the tests' own; host's {CONNLABEL_CONF}: {}",
        if before.is_some() {
            "present, unchanged"
        } else {
            "absent, still absent"
        }
    );
}
