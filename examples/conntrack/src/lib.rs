//! `conntrack`: a drop-in replacement for the `conntrack` program of conntrack-tools 1.4.7,
//! built on `conntrack-codec` and `conntrack-io`.
//!
//! ```text
//! cargo run --release -p conntrack-cli --bin conntrack -- -L
//! ```
//!
//! Commands `-L`, `-G`, `-D`, `-I`, `-A`, `-U`, `-E`, `-F`, `-C`, `-S`, `-R FILE|-`, `-V`,
//! `-h`, on the tables `conntrack`, `expect`, `dying` and `unconfirmed`, with every option of
//! 1.4.7. The command line is read as glibc's `getopt_long` reads it (permutation, unique
//! prefixes of long options, `--opt=value`, optional arguments only attached, grouped short
//! options), as bytes (an argument that is not UTF-8 is echoed as the bytes it is), and
//! checked against the same table of which command takes which option; the output on
//! stdout, the summary and error lines on stderr and the exit status (0, 1 on a failure or
//! when nothing was changed, 2 on a bad parameter) are those of 1.4.7.
//!
//! How that is checked: 254 parameter cases against conntrack-tools' recorded answers
//! ([`golden`], `tests/golden.rs`: no root, no namespace, no conntrack-tools needed), and
//! the rest live, side by side with conntrack-tools in throwaway namespaces
//! (`tests/tests/cli_*.rs` of the workspace).
//!
//! The program is a library: [`app::run`] runs a command line against any [`out::Term`]
//! (standard output and error), [`sys::System`] (the files it reads) and
//! [`kernel::Kernel`]; `main` gives it the process's own, and a test gives it buffers, files
//! in memory and [`kernel::EmptyTable`].
//!
//! 1.4.7's own behaviour is kept where it shows, since scripts depend on it: `-U` sends
//! updates without the entry's zone and with the command's address family; `-u` also sets
//! the mark's value (`-I -m 5 -u ASSURED` creates mark 4); `-F -f ipv6` flushes every
//! family; SCTP verification tags reach the kernel byte-swapped; the expected tuple of `-I
//! expect` gets its protocol from `--tuple-port-*`; `-j ADDR` matches nothing when combined
//! with another filter; `-R` shares `-o` and the `-l` filter of its last line across its
//! lines; the label map is read as libnetfilter_conntrack reads it (a bad line is skipped);
//! a request the library cannot build reports whatever errno holds then.
//!
//! What differs, on purpose:
//! - filters go to the kernel where it applies them the same way (family, mark, status,
//!   zone, and `CTA_FILTER` for IPv4 addresses, protocol, TCP/UDP ports and ICMP fields), so
//!   the dump is smaller; every entry that arrives is still filtered exactly as 1.4.7 does;
//! - `-D` and `-U` change the entries they find in bulk, on a second socket, a window at a
//!   time while the dump goes on, in memory bounded by the window whatever the table's size;
//!   each entry is printed once its change is done, so an interrupted run's output says
//!   exactly what happened (on SIGINT or SIGTERM the changes in flight are finished and
//!   printed, then the program dies of the signal, as 1.4.7 does, which has no handler);
//! - `-U` prints every entry it updated, as the kernel has it afterwards, counts what it
//!   updated, and reports each update that failed (1.4.7 prints only some, and reads the
//!   answer of one request as another's: its replies fall out of step);
//! - values 1.4.7 takes silently or crashes on are refused with exit status 2, after its own
//!   checks: ports, ICMP fields and GRE keys out of range or not numbers, zones past 65535,
//!   SCTP verification tags past 2^32-1, unknown SCTP states (1.4.7 crashes), `--id`
//!   without a value (1.4.7 crashes);
//! - `-E -b SIZE` sizes the event socket (1.4.7 sizes its request socket by mistake);
//! - 1.4.7's memory errors are not reproduced: its crash on `-R` files whose lines use
//!   labels, its stale line when an entry vanishes during `-D`.

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod text;

pub mod app;
pub mod cnum;
pub mod events;
pub mod filter;
pub mod getopt;
pub mod golden;
pub mod kernel;
pub mod model;
pub mod out;
pub mod parse;
pub mod proto;
pub mod run;
pub mod signals;
pub mod sys;
pub mod usage;
