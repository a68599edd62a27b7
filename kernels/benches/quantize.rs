//! Quantize / dequantize throughput per tensor type, on 1 and 2 threads.
//!
//! `cargo bench -p llq-kernels --bench quantize` prints one table. No criterion: a plain
//! timing loop (one warm-up pass, then the best of `LLQ_BENCH_REPS` passes) is enough to
//! compare types and thread counts, and keeps the dev-dependency list empty.
//!
//! Throughput is MB/s (10^6 bytes) of f32 data: the f32 input for quantize, the f32 output for
//! dequantize, so both columns count the same elements and compare directly.
//!
//! Environment: `LLQ_BENCH_MB` (f32 megabytes of input, default 64), `LLQ_BENCH_REPS`
//! (timed passes, default 2), `LLQ_BENCH_THREADS` (comma list, default `1,2`),
//! `LLQ_BENCH_IMPORTANCE=1` (quantize with a per-column importance vector, as with an imatrix:
//! the K-quants then run their other searches). A trailing argument that is not a flag filters
//! types by name (`cargo bench ... -- q4`).

use llq_types::GgmlType;
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

/// Row length: a typical LLaMA hidden size, a whole number of every block size (32 and 256).
const COLS: usize = 4096;

/// xorshift64*: deterministic, dependency-free, good enough to avoid degenerate blocks.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Irwin–Hall sum of 4 uniforms, centred and scaled: bell-shaped like trained weights
    /// (std ≈ 0.02), which is what the K-quant scale searches see in practice.
    fn weight(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.uniform()).sum();
        (s - 2.0) * 0.02 * (3.0f32).sqrt()
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Best wall time of `reps` runs of `f`, after one untimed warm-up run.
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mb = env_usize("LLQ_BENCH_MB", 64);
    let reps = env_usize("LLQ_BENCH_REPS", 2);
    let threads: Vec<usize> = std::env::var("LLQ_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    // `cargo bench` passes `--bench`; anything else is a type-name filter.
    let filter: Option<String> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.to_uppercase());

    let rows = (mb * 1_000_000 / 4 / COLS).max(1);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let src: Vec<f32> = (0..rows * COLS).map(|_| rng.weight()).collect();
    // One importance per column, shared by every row, as an imatrix gives.
    let importance: Option<Vec<f32>> = (env_usize("LLQ_BENCH_IMPORTANCE", 0) != 0)
        .then(|| (0..COLS).map(|_| 0.1 + rng.uniform()).collect());
    let f32_mb = (src.len() * 4) as f64 / 1e6;
    println!(
        "llq-kernels quantize bench: {rows} rows x {COLS} cols = {f32_mb:.1} MB f32, best of {reps}, \
         MB/s of f32 data, importance {}",
        if importance.is_some() { "on" } else { "off" }
    );
    println!(
        "{:<6} {:>7} {:>8} {:>12} {:>12}",
        "type", "bpw", "threads", "quant MB/s", "dequant MB/s"
    );

    // Every type, the activation types (Q8_0, Q8_1, Q8_K) included: their encoders run once
    // per token in the runtime.
    for ty in GgmlType::all() {
        if filter.as_deref().is_some_and(|f| !ty.name().contains(f)) {
            continue;
        }
        let row_bytes = ty.row_bytes(COLS).expect("whole blocks");
        let mut packed = vec![0u8; rows * row_bytes];
        let mut back = vec![0f32; rows * COLS];
        for &n in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("thread pool");
            // One row per rayon item: 16 KiB of f32, far above the scheduling overhead.
            let q = pool.install(|| {
                best_of(reps, || {
                    packed
                        .par_chunks_mut(row_bytes)
                        .zip(src.par_chunks(COLS))
                        .for_each(|(dst, s)| {
                            llq_kernels::quantize_row(ty, s, dst, importance.as_deref())
                        });
                    black_box(&packed);
                })
            });
            let d = pool.install(|| {
                best_of(reps, || {
                    back.par_chunks_mut(COLS)
                        .zip(packed.par_chunks(row_bytes))
                        .for_each(|(dst, s)| llq_kernels::dequantize_row(ty, s, dst));
                    black_box(&back);
                })
            });
            println!(
                "{:<6} {:>7.3} {:>8} {:>12.0} {:>12.0}",
                ty.name(),
                ty.bits_per_weight(),
                n,
                f32_mb / q,
                f32_mb / d
            );
        }
    }
}
