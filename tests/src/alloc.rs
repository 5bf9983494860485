//! A counting global allocator for the tests that prove "no allocation per entry".
//!
//! A test binary installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting;` and measures a closure with
//! [`allocations`]. Counts are per thread, since tests run on several threads;
//! [`allocations_everywhere`] counts on every thread of the process, for code that starts
//! threads of its own (its test binary must then run one test at a time).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Forwards to the system allocator and counts allocations (not frees) per thread.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Allocations on every thread.
static EVERYWHERE: AtomicU64 = AtomicU64::new(0);

fn count_one() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    EVERYWHERE.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// a thread-local integer and an atomic one, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns what it returned with the number of allocations it made on this
/// thread (meaningful only where [`Counting`] is the global allocator).
pub fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

/// Runs `f` and returns what it returned with the number of allocations made meanwhile on
/// every thread of the process (threads `f` starts included). Meaningful only where
/// [`Counting`] is the global allocator and nothing else runs: give such a test a binary of
/// its own, with no other test in it.
pub fn allocations_everywhere<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = EVERYWHERE.load(Ordering::SeqCst);
    let out = f();
    (out, EVERYWHERE.load(Ordering::SeqCst) - before)
}
