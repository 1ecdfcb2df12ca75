//! The counting global allocator of the no-allocation tests. A test binary installs it with
//!
//! ```ignore
//! use petrel_testkit::alloc_counter;
//! #[global_allocator]
//! static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;
//! ```
//!
//! (the binary chooses its allocator, so each test binary declares this static itself) and
//! counts either every thread's allocations ([`count_all_threads`]) or only those of the
//! threads that called [`watch_this_thread`] ([`count_watched_threads`]), so that a test's own
//! client may allocate freely. `alloc` and `realloc` count; `dealloc` does not.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

pub struct Counting;

const OFF: u8 = 0;
const ALL_THREADS: u8 = 1;
const WATCHED_THREADS: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(OFF);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    let counted = match MODE.load(Ordering::Relaxed) {
        ALL_THREADS => true,
        WATCHED_THREADS => WATCHED.with(Cell::get),
        _ => false,
    };
    if counted {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: delegates every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Marks the calling thread as one whose allocations [`count_watched_threads`] counts.
pub fn watch_this_thread(watched: bool) {
    WATCHED.with(|w| w.set(watched));
}

/// Starts counting every thread's allocations from zero.
pub fn count_all_threads() {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    MODE.store(ALL_THREADS, Ordering::SeqCst);
}

/// Starts counting, from zero, only the allocations of watched threads.
pub fn count_watched_threads() {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    MODE.store(WATCHED_THREADS, Ordering::SeqCst);
}

/// Stops counting; returns how many allocations were counted.
pub fn stop_counting() -> u64 {
    MODE.store(OFF, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}
