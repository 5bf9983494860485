//! The `conntrackd` program's readers of untrusted text: `conntrackd.conf` (scanner and
//! grammar) and the command line. They must return, never panic; a configuration that is
//! refused says why in one error line, the last; one that is accepted has 1.4.7's defaults
//! in place of zeros.
#![no_main]

use conntrackd::log::Priority;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let iface = |n: &str| (n == "lo").then_some(1);
    let proto = |n: &str| match n {
        "tcp" => Some(6),
        "udp" => Some(17),
        _ => None,
    };
    let loaded = conntrackd::config::parse(data, &iface, &proto);
    let errors = loaded.said.iter().filter(|(p, _)| *p == Priority::Error).count();
    match &loaded.config {
        None => {
            assert_eq!(errors, 1);
            assert_eq!(loaded.said.last().map(|(p, _)| *p), Some(Priority::Error));
        }
        Some(c) => {
            assert_eq!(errors, 0);
            assert!(c.general.hashsize != 0 && c.general.hashlimit != 0);
            if let Some(s) = &c.sync {
                assert!(s.window_size != 0 && s.purge_timeout != 0);
            }
            let _ = c.not_implemented();
        }
    }
    // The same bytes as a command line, one argument per line.
    let text = String::from_utf8_lossy(data);
    let mut args = vec!["conntrackd".to_string()];
    args.extend(text.lines().map(str::to_string));
    let _ = conntrackd::cli::parse(&args);
});
