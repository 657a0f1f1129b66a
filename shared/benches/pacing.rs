//! The per-number pacing primitive on virtual time, with the in-memory window counter:
//! - setup, asserted (the bench panics if violated): 10,000 sends paced at 80/s on one number
//!   never put more than 80 in any one-second window, and the achieved rate (10,000 / virtual
//!   elapsed seconds) is within 5% of 80/s; the figures are printed, with the busiest sliding
//!   one-second interval for information;
//! - `pacing_acquire`: CPU cost of one `Pacer::acquire` (pacer logic, counter, virtual sleep).
//!
//! `cargo bench -p shared --bench pacing` (add `-- --quick` for a fast run).
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shared::pacing::{Clock, MemoryWindowCounter, Pacer, VirtualClock};

const PNID: &str = "106540352242922";
const SENDS: usize = 10_000;
const RATE: u32 = 80;
/// A second boundary; runs start at a phase inside the second, as a real campaign would.
const T0: i64 = 1_749_416_384_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

struct Run {
    label: &'static str,
    windows: BTreeMap<i64, u32>,
    /// Busiest one-second window counted by release time (the virtual clock when the permit
    /// was handed out), not by the permit's window.
    max_by_release: u32,
    /// Busiest half-open interval [t, t + 1000 ms) of release times.
    max_sliding: usize,
    elapsed_s: f64,
    rate: f64,
}

fn run(label: &'static str, start_ms: i64, spread: bool) -> Run {
    let clock = VirtualClock::at(start_ms);
    let pacer = Pacer::new(MemoryWindowCounter::new())
        .with_virtual_clock(&clock)
        .with_spread(spread);
    let rt = runtime();
    let mut released = Vec::with_capacity(SENDS);
    let mut windows: BTreeMap<i64, u32> = BTreeMap::new();
    rt.block_on(async {
        for _ in 0..SENDS {
            let p = pacer.acquire(PNID, Some(RATE)).await.expect("permit");
            let now = clock.now_ms();
            assert_eq!(
                now.div_euclid(1000),
                p.window_second,
                "released outside its window"
            );
            *windows.entry(p.window_second).or_default() += 1;
            released.push(now);
        }
    });
    assert_eq!(windows, pacer.counter().counts(PNID));
    let mut by_release: BTreeMap<i64, u32> = BTreeMap::new();
    for t in &released {
        *by_release.entry(t.div_euclid(1000)).or_default() += 1;
    }
    let mut max_sliding = 0;
    let mut lo = 0;
    for hi in 0..released.len() {
        while released[hi] - released[lo] >= 1000 {
            lo += 1;
        }
        max_sliding = max_sliding.max(hi - lo + 1);
    }
    let elapsed_s = (released[SENDS - 1] - start_ms) as f64 / 1000.0;
    Run {
        label,
        max_by_release: by_release.values().copied().max().unwrap_or(0),
        windows,
        max_sliding,
        elapsed_s,
        rate: SENDS as f64 / elapsed_s,
    }
}

fn check_pace() {
    let runs = [
        run("spread, start on a boundary", T0, true),
        run("spread, start 437 ms into a second", T0 + 437, true),
        run("burst, start 437 ms into a second", T0 + 437, false),
    ];
    for r in &runs {
        let max_window = r.windows.values().copied().max().unwrap_or(0);
        println!(
            "pacing {SENDS} sends at {RATE}/s ({}): {} windows, max {max_window} per window \
             ({} by release time), {:.3} s virtual, achieved {:.2}/s ({:+.2}% of {RATE}), \
             busiest sliding second {}",
            r.label,
            r.windows.len(),
            r.max_by_release,
            r.elapsed_s,
            r.rate,
            (r.rate / f64::from(RATE) - 1.0) * 100.0,
            r.max_sliding,
        );
        assert!(
            max_window <= RATE && r.max_by_release <= RATE,
            "{}: a one-second window got more than {RATE}: {:?}",
            r.label,
            r.windows
        );
        assert!(
            (r.rate - f64::from(RATE)).abs() <= 0.05 * f64::from(RATE),
            "{}: achieved {:.2}/s, not within 5% of {RATE}/s",
            r.label,
            r.rate
        );
    }
}

fn bench_pacing(c: &mut Criterion) {
    check_pace();

    let mut g = c.benchmark_group("pacing_acquire");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    g.throughput(Throughput::Elements(1));
    for (label, spread) in [("80_per_s_spread", true), ("80_per_s_burst", false)] {
        g.bench_function(label, |b| {
            let rt = runtime();
            b.iter_custom(|iters| {
                let clock = VirtualClock::at(T0 + 437);
                let pacer = Pacer::new(MemoryWindowCounter::new())
                    .with_virtual_clock(&clock)
                    .with_spread(spread);
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        black_box(pacer.acquire(black_box(PNID), Some(RATE)).await.unwrap());
                    }
                    started.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_pacing);
criterion_main!(benches);
