//! Issue 3: the memory of the dedupe index per million ids, measured with a counting
//! allocator (the figure in ARCHITECTURE.md and pipelines/README.md comes from this test:
//! `cargo test --test dedupe_memory -- --nocapture`).

use fhirpipe::stage::transform::dedupe::{key, position, DedupeIndex};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Builds the index for 1,000,000 distinct ids (plus 10% repeats) and reports its heap size
/// and the peak while building (the table doubles as it grows).
#[test]
fn issue3_dedupe_index_memory_per_million_ids() {
    const IDS: u64 = 1_000_000;
    let keys: Vec<u64> = (0..IDS).map(|i| key(42, &format!("id-{i}"))).collect();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut ix = DedupeIndex::new();
    for (i, &k) in keys.iter().enumerate() {
        ix.offer(k, Some(i as i64), position(0, i as u32));
    }
    for (i, &k) in keys.iter().enumerate().step_by(10) {
        ix.offer(k, Some(i as i64 + 1), position(1, i as u32));
    }
    let live = LIVE.load(Ordering::Relaxed) - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(ix.len() as u64, IDS);
    assert!(ix.is_winner(keys[10], position(1, 10)));
    assert!(!ix.is_winner(keys[10], position(0, 10)));
    println!(
        "dedupe index for {IDS} ids: {:.1} MiB live ({:.1} bytes/id), {:.1} MiB peak while building",
        live as f64 / (1 << 20) as f64,
        live as f64 / IDS as f64,
        peak as f64 / (1 << 20) as f64
    );
    // 24-byte entries in a power-of-two table at most 7/8 full, plus a control byte each.
    assert!((26..=53).contains(&(live as u64 / IDS)), "{live}");
}
