//! Cold phone-number normalisation, each sample in a fresh process (`cargo bench -p shared --bench
//! phone`): what a Lambda's first message pays. For every sample the table gives the medians of
//! `PhoneNormalizer::new` (at init), the first `to_e164` (the calling code's metadata is decoded
//! and the expressions the number needs parsed), a second number of the same code, and the
//! process's peak RSS; and, for comparison, the first parse + validation through the `phonenumber` crate's whole
//! database (what `PhoneNormalizer` did before it loaded metadata per calling code).
use std::process::Command;
use std::time::Instant;

/// (default region, first input, second input of the same calling code).
const SAMPLES: &[(&str, &str, &str)] = &[
    ("US", "(650) 555-1234", "+1 212 555 0100"),
    ("BR", "+55 11 91234-5678", "(21) 99876-5432"),
    ("GB", "01212 345678", "07400 123456"),
    ("IN", "+91 98765 43210", "080 2345 6789"),
    ("PT", "+351 912 345 678", "213 456 789"),
];
const RUNS: usize = 9;

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One cold measurement in this (fresh) process: prints `init_us first_us second_us rss_kb`.
fn child(mode: &str, region: &str, first: &str, second: &str) {
    let t = Instant::now();
    // Set up, then one normalisation (that must succeed) per call.
    let normalise: Box<dyn Fn(&str)> = if mode == "whole" {
        let id: phonenumber::country::Id = region.parse().expect("region");
        Box::new(move |input| {
            let n = phonenumber::parse(Some(id), input).expect("parses");
            assert!(phonenumber::is_valid(&n), "{input}");
        })
    } else {
        let normalizer = shared::phone::PhoneNormalizer::new(region).expect("region");
        Box::new(move |input| {
            normalizer.to_e164(input).expect("valid");
        })
    };
    let init = t.elapsed();
    normalise(first);
    let first_t = t.elapsed() - init;
    normalise(second);
    let second_t = t.elapsed() - init - first_t;
    println!(
        "{} {} {} {}",
        init.as_micros(),
        first_t.as_micros(),
        second_t.as_micros(),
        peak_rss_kb()
    );
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], &args[i + 2], &args[i + 3], &args[i + 4]);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!("| default | first number | mode | init µs | first µs | second µs | peak RSS kB |");
    println!("|---|---|---|---:|---:|---:|---:|");
    for (region, first, second) in SAMPLES {
        for mode in ["per-code", "whole"] {
            let mut cols: [Vec<u64>; 4] = Default::default();
            for _ in 0..RUNS {
                let out = Command::new(&exe)
                    .args(["--child", mode, region, first, second])
                    .output()
                    .expect("run child");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let line = String::from_utf8(out.stdout).expect("utf-8");
                for (col, value) in cols.iter_mut().zip(line.split_whitespace()) {
                    col.push(value.parse().expect("number"));
                }
            }
            let [init, first_t, second_t, rss] = cols.map(median);
            println!("| {region} | `{first}` | {mode} | {init} | {first_t} | {second_t} | {rss} |");
        }
    }
}
