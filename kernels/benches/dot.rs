//! Matrix × vector throughput per weight type, in GB/s of weight data (10^9 bytes per second),
//! scalar vs each SIMD table (AVX2, AVX-512) on 1 and 2 threads, next to a plain memory-read bandwidth test.
//!
//! `cargo bench -p llq-kernels --bench dot` prints two tables for a 4096×4096 matrix:
//! - `hot`: the same matrix over and over. Small types fit in L3 (32 MiB here), so this measures
//!   the kernels' compute speed.
//! - `dram`: a ring of copies of the matrix, at least `LLQ_BENCH_RING_MB` (default 512) in total,
//!   used in turn, as in token generation where every weight comes from memory.
//!   Compare with the memory-read line: a bandwidth-bound kernel approaches it.
//!
//! Every cell is the best single matvec over `LLQ_BENCH_SECS` (see [`rate`]): the machine may be
//! shared. Activation quantization (one 4096 row) is done once, outside the timed loop: it is ~0.1% of
//! a matvec. Environment: `LLQ_BENCH_SECS` (time per cell, default 0.6), `LLQ_BENCH_THREADS`
//! (comma list, default `1,2`), `LLQ_BENCH_TOKENS` (comma list of token counts of the matmul
//! tables, default 64; they run the table in use, which `LLQ_KERNELS` picks),
//! `LLQ_BENCH_TABLES` (comma list of the tables of the matvec table, default all; `none` for
//! none). A trailing argument filters types by name (`-- q4`).

use llq_kernels::dot::{self, DotTable};
use llq_kernels::matmul::{matmul_quantized_with, Activations, Weights};
use llq_types::GgmlType;
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

const N: usize = 4096;

/// Every weight type (those with a dot product), in the types table's order.
fn weight_types() -> impl Iterator<Item = GgmlType> {
    GgmlType::all().filter(|&ty| dot::scalar_table().kernel(ty).is_some())
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn normal(&mut self) -> f32 {
        let u: f32 = (0..4)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32)
            .sum();
        (u - 2.0) * 1.7
    }
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Call `f(i)` for i = 0, 1, 2, ... for about `secs`, timing each call; each call processes
/// `bytes` bytes. Returns the best call's rate in GB/s. Timing single calls (1-20 ms) and keeping
/// the best filters out preemption by other processes on a shared machine.
fn rate(secs: f64, bytes: usize, mut f: impl FnMut(usize)) -> f64 {
    f(0);
    let start = Instant::now();
    let mut best = f64::MAX;
    let mut i = 1;
    while start.elapsed().as_secs_f64() < secs || i < 4 {
        let t = Instant::now();
        f(i);
        best = best.min(t.elapsed().as_secs_f64());
        i += 1;
    }
    bytes as f64 / best / 1e9
}

/// Read bandwidth: sum a 1 GB buffer of u64 on `pool`'s threads, 32 MB per timed call (the
/// buffer is walked in order, so every call reads memory, not cache).
fn memory_read(pool: &rayon::ThreadPool, secs: f64) -> f64 {
    let buf: Vec<u64> = (0..(1usize << 30) / 8).map(|i| i as u64).collect();
    let chunk = (32 << 20) / 8;
    let n = buf.len() / chunk;
    pool.install(|| {
        rate(secs.max(2.0), chunk * 8, |i| {
            let c = &buf[(i % n) * chunk..][..chunk];
            let s: u64 = c
                .par_chunks(1 << 15)
                .map(|c| c.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
                .sum();
            black_box(s);
        })
    })
}

/// One 4096×4096 matrix of `ty`: 256 distinct encoded rows, tiled.
fn matrix(ty: GgmlType) -> Vec<u8> {
    let rb = ty.row_bytes(N).unwrap();
    let distinct: Vec<u8> = (0..256)
        .into_par_iter()
        .flat_map_iter(|r| {
            let mut rng = Rng(rng_seed(r));
            let x: Vec<f32> = (0..N).map(|_| rng.normal() * 0.02).collect();
            let mut out = vec![0u8; rb];
            llq_kernels::quantize_row(ty, &x, &mut out, None);
            out
        })
        .collect();
    distinct.iter().copied().cycle().take(rb * N).collect()
}

fn rng_seed(r: usize) -> u64 {
    (r as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

fn main() {
    let secs = env_f64("LLQ_BENCH_SECS", 0.6);
    let ring_mb = env_f64("LLQ_BENCH_RING_MB", 512.0);
    let threads: Vec<usize> = std::env::var("LLQ_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let filter: Option<String> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.to_lowercase());
    let pools: Vec<(usize, rayon::ThreadPool)> = threads
        .iter()
        .map(|&n| {
            let p = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap();
            (n, p)
        })
        .collect();

    println!("dot kernels: best table = {}", dot::best_table().isa);
    for (n, pool) in &pools {
        println!(
            "memory read (sum of a 1 GB u64 buffer), {n} thread(s): {:.1} GB/s",
            memory_read(pool, secs)
        );
    }
    // Every table this CPU supports: scalar, then AVX2 and AVX-512 where available.
    let only: Option<Vec<String>> = std::env::var("LLQ_BENCH_TABLES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let tables: Vec<(&str, &DotTable)> = dot::tables()
        .into_iter()
        .filter(|t| only.as_ref().is_none_or(|o| o.iter().any(|n| n == t.isa)))
        .map(|t| (t.isa, t))
        .collect();
    // `LLQ_BENCH_TABLES=none` (no table of that name): only the matmul tables below.
    let matvec_types = weight_types().filter(|_| !tables.is_empty());
    let mut header = format!("{:<6} {:>9}", "type", "MB");
    for mode in ["hot", "dram"] {
        for (name, _) in &tables {
            for (n, _) in &pools {
                header += &format!(" {:>12}", format!("{mode} {name} {n}T"));
            }
        }
    }
    println!("\nmatvec 4096x4096, GB/s of weight data\n{header}");
    let mut rng = Rng(99);
    let x: Vec<f32> = (0..N).map(|_| rng.normal()).collect();
    for ty in matvec_types {
        if let Some(f) = &filter {
            if !ty.name().to_lowercase().contains(f.as_str()) {
                continue;
            }
        }
        let m = matrix(ty);
        let bytes = m.len();
        let copies = ((ring_mb * 1e6 / bytes as f64).ceil() as usize).max(2);
        let ring: Vec<Vec<u8>> = (0..copies).map(|_| m.clone()).collect();
        let act = Activations::quantize(ty, &x, N);
        let mut out = vec![0f32; N];
        let mut line = format!("{:<6} {:>9.1}", ty.name(), bytes as f64 / 1e6);
        for hot in [true, false] {
            for (_, table) in &tables {
                for (_, pool) in &pools {
                    let r = pool.install(|| {
                        if hot {
                            let w = Weights::new(ty, &m, N, N).unwrap();
                            rate(secs, bytes, |_| {
                                matmul_quantized_with(table, &w, &act, &mut out);
                                black_box(&out);
                            })
                        } else {
                            let ws: Vec<Weights> = ring
                                .iter()
                                .map(|d| Weights::new(ty, d, N, N).unwrap())
                                .collect();
                            // Each call uses the next matrix of the ring: always cold.
                            rate(secs, bytes, |i| {
                                matmul_quantized_with(table, &ws[i % copies], &act, &mut out);
                                black_box(&out);
                            })
                        }
                    });
                    line += &format!(" {r:>12.2}");
                }
            }
        }
        println!("{line}");
    }

    // Prompt processing: many tokens at once (the register tiles where the table has them),
    // in the table in use (`LLQ_KERNELS` picks it), every thread count, every token count.
    let table = dot::table();
    let token_counts: Vec<usize> = std::env::var("LLQ_BENCH_TOKENS")
        .unwrap_or_else(|_| "64".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    for n_tok in token_counts {
        let xs: Vec<f32> = (0..n_tok * N).map(|_| rng.normal()).collect();
        println!(
            "\nmatmul 4096x4096 x {n_tok} tokens ({}), GFLOP/s (2·rows·cols·tokens)",
            table.isa
        );
        for ty in weight_types() {
            if let Some(f) = &filter {
                if !ty.name().to_lowercase().contains(f.as_str()) {
                    continue;
                }
            }
            let m = matrix(ty);
            let w = Weights::new(ty, &m, N, N).unwrap();
            let act = Activations::quantize(ty, &xs, N);
            let mut out = vec![0f32; n_tok * N];
            let mut line = format!("{:<6}", ty.name());
            for (n, pool) in &pools {
                let flops = 2 * N * N * n_tok;
                let r = pool.install(|| {
                    rate(secs, flops, |_| {
                        matmul_quantized_with(table, &w, &act, &mut out);
                        black_box(&out);
                    })
                });
                line += &format!("  {n}T {r:>7.1}");
            }
            println!("{line}");
        }
    }
}
