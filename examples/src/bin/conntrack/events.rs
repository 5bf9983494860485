//! `-E`: the event log of conntrack-tools 1.4.7 on the event stream of `conntrack-io`.
//!
//! Each conntrack event that passes the same filters as `-L` is printed at once (flushed),
//! with ` [USERSPACE] portid=N progname=P` when a request caused it; expectation events are
//! printed as `-E expect` does. SIGINT or SIGTERM end the log: the XML footer if the header
//! was printed, the number of events shown on stderr, exit status 0.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use conntrack_codec::ct::ConntrackRepr;
use conntrack_codec::fmt::{CtLine, ExpLine, Origin, Style, Userspace, XML_EXP_HEADER, XML_HEADER};
use conntrack_codec::labels::LabelNames;
use conntrack_io::{Error as IoError, Event, Events, Groups, Socket};

use crate::filter;
use crate::model::Obj;
use crate::parse::{cmd, ev, opt, out as o, Cmd, Fail};
use crate::run::{clock, err2str, Ctx};

/// Events printed, for the summary the signal handler prints.
static SHOWN: AtomicU64 = AtomicU64::new(0);
/// The XML header was printed: the footer is due.
static XML_OPEN: AtomicBool = AtomicBool::new(false);

const ENOBUFS_WARNING: &str = "WARNING: We have hit ENOBUFS! We are losing events.\nThis message means that the current netlink socket buffer size is too small.\nPlease, check --buffer-size in conntrack(8) manpage.";

/// Waits for SIGINT or SIGTERM on a thread of its own, then ends the program as the tool's
/// handler does. Says on `ready` once the handlers are in place.
fn on_signal(expect: bool, ready: std::sync::mpsc::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    else {
        let _ = ready.send(false);
        return;
    };
    rt.block_on(async {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            let _ = ready.send(false);
            return;
        };
        let _ = ready.send(true);
        std::future::poll_fn(|cx| {
            if int.poll_recv(cx).is_ready() || term.poll_recv(cx).is_ready() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    });
    // Taking the lock waits for the line being written, and keeps another from starting.
    let mut stdout = std::io::stdout().lock();
    if XML_OPEN.load(Ordering::SeqCst) {
        let footer = if expect {
            "</expect>\n"
        } else {
            "</conntrack>\n"
        };
        let _ = stdout.write_all(footer.as_bytes());
        let _ = stdout.flush();
    }
    let what = if expect {
        "expectation events"
    } else {
        "flow events"
    };
    eprintln!(
        "conntrack v1.4.7 (conntrack-tools): {} {what} have been shown.",
        SHOWN.load(Ordering::SeqCst) as i32
    );
    std::process::exit(0);
}

/// The program names of requesting sockets, found in /proc as conntrack-tools 1.4.7 finds
/// them; the last answer is kept for the same port id and socket inode.
#[derive(Default)]
struct Prognames {
    last: Option<(u32, u64, Option<String>)>,
}

impl Prognames {
    fn get(&mut self, portid: u32) -> Option<String> {
        let inode = netlink_inode(portid)?;
        if let Some((p, i, name)) = &self.last {
            if *p == portid && *i == inode {
                return name.clone();
            }
        }
        let name = holder_name(u64::from(portid), inode).or_else(|| {
            std::fs::read_dir("/proc")
                .ok()?
                .filter_map(|d| d.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .filter(|&pid| pid > 1 && pid != u64::from(portid))
                .find_map(|pid| holder_name(pid, inode))
        });
        self.last = Some((portid, inode, name.clone()));
        name
    }
}

/// The inode of the `NETLINK_NETFILTER` socket (protocol 12) with port id `portid`, from
/// `/proc/net/netlink`.
fn netlink_inode(portid: u32) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netlink").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let proto: i32 = f.get(1)?.parse().ok()?;
        let pid: u32 = f.get(2)?.parse().ok()?;
        let inode: u64 = f.get(9)?.parse().ok()?;
        (proto == 12 && pid == portid).then_some(inode)
    })
}

/// The name of process `pid` (from `/proc/PID/stat`) if it holds socket `inode`.
fn holder_name(pid: u64, inode: u64) -> Option<String> {
    let target = format!("socket:[{inode}]");
    let holds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()));
    if !holds {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.split_once('(')?;
    let name = rest.split(')').next()?;
    Some(name.to_string())
}

/// Runs `-E` or `-E expect` until a signal ends the program.
///
/// # Errors
/// The failure to report: the socket cannot be opened or read.
pub fn run(ctx: &mut Ctx, c: &mut Cmd, sock: &mut Socket) -> Result<(), Fail> {
    let expect = c.command == cmd::EXP_EVENT;
    let groups = if expect {
        Groups::EXPECT
    } else if c.options & opt::EVENT_MASK != 0 {
        let mut g = Groups::NONE;
        if c.event_mask & ev::NEW != 0 {
            g |= Groups::CONNTRACK_NEW;
        }
        if c.event_mask & ev::UPD != 0 {
            g |= Groups::CONNTRACK_UPDATE;
        }
        if c.event_mask & ev::DEL != 0 {
            g |= Groups::CONNTRACK_DESTROY;
        }
        g
    } else {
        Groups::CONNTRACK
    };
    let mut events = Events::open(groups).map_err(|e| {
        if expect {
            return Fail::other("Can't open handler");
        }
        // 1.4.7 says which call failed first (perror), then that it could not open.
        if let IoError::Sys { call, errno } = &e {
            let what = if call.starts_with("socket") {
                "mnl_socket_open"
            } else {
                "mnl_socket_bind"
            };
            eprintln!("{what}: {}", crate::cnum::strerror(*errno as i32));
        }
        Fail::other("Can't open netlink socket")
    })?;
    if !expect && c.options & opt::BUFFERSIZE != 0 {
        let size = usize::try_from(c.buffer_size).unwrap_or(0);
        let got = events.set_rcvbuf(size).unwrap_or(0);
        eprintln!("NOTICE: Netlink socket buffer size has been set to {got} bytes.");
    }
    let _ = sock;
    let nf = if expect {
        filter::NetFilter::default()
    } else {
        filter::filter_init(c)?
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || on_signal(expect, ready_tx));
    if ready_rx.recv() != Ok(true) {
        return Err(Fail::other("Can't open handler"));
    }
    let cur = ctx.cur.clone();
    let check = filter::needs_filter(c, &cur);
    let mask = ctx.g.output_mask;
    let mut prognames = Prognames::default();
    let mut line = String::new();
    let mut entry = ConntrackRepr::default();
    loop {
        line.clear();
        let mut out = if expect {
            let mut out = conntrack_codec::fmt::Output {
                style: if mask & o::XML != 0 {
                    Style::Xml
                } else {
                    Style::Default
                },
                ..Default::default()
            };
            clock(&mut out);
            out
        } else {
            ctx.output(true)
        };
        if mask & o::TMS != 0 {
            out.event_time = Some(conntrack_examples::now_micros());
        }
        let event = match events.next() {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(e @ (IoError::Codec { .. } | IoError::Truncated { .. })) => {
                let _ = e;
                continue;
            }
            Err(e) => {
                let errno = match &e {
                    IoError::Sys { errno, .. } => *errno as i32,
                    _ => nix::libc::EIO,
                };
                return Err(Fail::other(if expect {
                    format!("Operation failed: {}", err2str(errno, c.command))
                } else {
                    format!(
                        "failed to received netlink event: {}",
                        crate::cnum::strerror(errno)
                    )
                }));
            }
        };
        match event {
            Event::Conntrack(ev) if !expect => {
                if c.family != 0 && c.family != ev.entry.family() {
                    continue;
                }
                // Only a filter the kernel cannot apply needs the entry as plain data.
                if check
                    && (entry.read_view(&ev.entry).is_err()
                        || filter::nfct_filter(c, &nf, &Obj::from_entry(&entry), &cur))
                {
                    continue;
                }
                let labels: &dyn LabelNames = match &ctx.g.labelmap {
                    Some(m) => m,
                    None => &(),
                };
                let Ok(l) = CtLine::from_view(&ev.entry, Origin::Event(ev.kind), &out, labels)
                else {
                    continue;
                };
                if out.style == Style::Xml && !XML_OPEN.load(Ordering::SeqCst) {
                    XML_OPEN.store(true, Ordering::SeqCst);
                    line.push_str(XML_HEADER);
                }
                let progname = (ev.portid != 0).then(|| prognames.get(ev.portid));
                let userspace = progname.as_ref().map(|p| Userspace {
                    portid: ev.portid,
                    progname: p.as_deref(),
                });
                let _ = write!(line, "{}", l.userspace(userspace));
            }
            Event::Expect(ev) if expect => {
                let Ok(l) = ExpLine::from_view(&ev.exp, Some(ev.kind), &out) else {
                    continue;
                };
                if out.style == Style::Xml && !XML_OPEN.load(Ordering::SeqCst) {
                    XML_OPEN.store(true, Ordering::SeqCst);
                    line.push_str(XML_EXP_HEADER);
                }
                let _ = write!(line, "{l}");
            }
            Event::Lost(_) if expect => {
                return Err(Fail::other(format!(
                    "Operation failed: {}",
                    err2str(nix::libc::ENOBUFS, c.command)
                )));
            }
            Event::Lost(_) => {
                eprintln!("{ENOBUFS_WARNING}");
                continue;
            }
            _ => continue,
        }
        line.push('\n');
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // conntrack-tools dies of SIGPIPE here; we were asked to keep the default action,
            // so this is only reached if SIGPIPE is ignored.
            return Ok(());
        }
        SHOWN.fetch_add(1, Ordering::SeqCst);
        ctx.counter += 1;
    }
}
