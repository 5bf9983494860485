//! Memory stays flat whatever the table size: a counting global allocator proves that dumps,
//! requests and bulk operations allocate nothing per entry. (Its own test binary, since it
//! sets the global allocator.)

mod io_support;

use std::ops::ControlFlow;

use conntrack_tests::alloc::{allocations, Counting};
use conntrack_tests::Netns;
use io_support::{create, create_entries, delete, dump_ipv4, index_of};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn dumps_allocate_nothing_per_entry() {
    let ns = Netns::new("io-alloc");
    let mut sock = ns.socket();
    let dump = |sock: &mut conntrack_io::Socket| {
        allocations(|| {
            let mut sum = 0u64;
            let summary = sock
                .dump(dump_ipv4, |entry| {
                    sum += u64::from(index_of(entry));
                    ControlFlow::Continue(())
                })
                .expect("dump");
            (summary.delivered, sum)
        })
    };
    create_entries(&mut sock, 1000);
    let ((small, _), small_allocs) = dump(&mut sock);
    create_entries_from(&mut sock, 1000, 5000);
    let ((large, _), large_allocs) = dump(&mut sock);
    eprintln!("dump of {small} entries: {small_allocs} allocations; of {large}: {large_allocs}");
    assert_eq!((small, large), (1000, 5000));
    assert_eq!(small_allocs, large_allocs);
    assert_eq!(large_allocs, 0);
}

/// Creates entries `from..to`.
fn create_entries_from(sock: &mut conntrack_io::Socket, from: u32, to: u32) {
    let summary = sock
        .bulk(
            (to - from) as usize,
            64,
            |i, w, seq| create(w, seq, from + i as u32),
            |i, r| r.unwrap_or_else(|e| panic!("create {i}: {e}")),
        )
        .expect("bulk");
    assert_eq!(summary.succeeded, (to - from) as usize);
}

#[test]
fn requests_and_bulk_allocate_nothing_per_request() {
    let ns = Netns::new("io-alloc2");
    let mut sock = ns.socket();
    let ((), execute_allocs) = allocations(|| {
        for i in 0..100 {
            sock.execute(|w, seq| create(w, seq, i)).expect("create");
        }
    });
    let bulk = |from: u32, n: u32, sock: &mut conntrack_io::Socket| {
        allocations(|| create_entries_from(sock, from, from + n)).1
    };
    let small = bulk(1000, 100, &mut sock);
    let large = bulk(2000, 5000, &mut sock);
    let ((), delete_allocs) = allocations(|| {
        sock.bulk(
            5000,
            64,
            |i, w, seq| delete(w, seq, 2000 + i as u32),
            |_, r| r.expect("delete"),
        )
        .map(drop)
        .expect("bulk delete")
    });
    eprintln!(
        "100 executes: {execute_allocs} allocations; bulk of 100: {small}; of 5000: {large}; \
         bulk delete of 5000: {delete_allocs}"
    );
    assert_eq!(execute_allocs, 0);
    assert_eq!((small, large, delete_allocs), (0, 0, 0));
    // Only a window above 4096 allocates its bitmap, once per call.
    sock.set_rcvbuf(8 << 20).expect("rcvbuf");
    let ((), big_window) = allocations(|| {
        sock.bulk(
            5000,
            5000,
            |i, w, seq| delete(w, seq, 2000 + i as u32),
            |_, r| assert!(matches!(r, Err(conntrack_io::Error::Kernel(_)))),
        )
        .map(drop)
        .expect("bulk delete")
    });
    assert_eq!(big_window, 1);
}

#[test]
fn filtered_lists_and_delete_matching_allocate_nothing_per_entry() {
    use conntrack_codec::filter::DumpFilter;
    let ns = Netns::new("io-alloc3");
    let mut sock = ns.socket();
    // Entry `i` has mark `i`: the filter selects the even ones.
    let even = DumpFilter::ipv4().with_mark(0, 1);
    // The first call opens the second socket; later calls reuse it.
    sock.delete_matching(&even).expect("warm up");
    create_entries(&mut sock, 1000);
    let (listed, list_allocs) = allocations(|| {
        sock.list(&even, |_| ControlFlow::Continue(()))
            .expect("list")
            .delivered
    });
    assert_eq!((listed, list_allocs), (500, 0));
    let (small, small_allocs) = allocations(|| sock.delete_matching(&even).expect("delete"));
    create_entries_from(&mut sock, 1000, 9000);
    let (large, large_allocs) = allocations(|| sock.delete_matching(&even).expect("delete"));
    eprintln!(
        "delete_matching of {} entries: {small_allocs} allocations; of {}: {large_allocs}",
        small.succeeded, large.succeeded
    );
    assert_eq!((small.succeeded, large.succeeded), (500, 4000));
    assert_eq!((small.failed, large.failed), (0, 0));
    // The window's buffers, once per call, whatever the number of entries.
    assert_eq!(small_allocs, large_allocs);
    assert!(large_allocs <= 4, "{large_allocs}");
}
