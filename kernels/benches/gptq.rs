//! GPTQ's cost per matrix on TinyLlama-shaped matrices (Q4_K by default): the factorization
//! (`gptq::Hessian::new`) and the column loop with its products (`gptq::quantize_with`)
//! separately, next to ggml's ordinary rounding of the same matrix, on 1 and 2 threads; then
//! an extrapolation to a LLaMA-7B layer. Wall seconds, and the process's CPU seconds (from
//! /proc/self/stat on Linux) since the machine may be shared.
//!
//! `cargo bench -p llq-kernels --bench gptq`. Environment: `LLQ_BENCH_THREADS` (comma list,
//! default `1,2`), `LLQ_BENCH_TYPE` (default `Q4_K`). One timed run per figure (a run takes
//! seconds): compare figures from the same run.
//!
//! The extrapolation scales the column loop's time by rows·cols² (the trailing products'
//! multiply-adds) and the factorization's by cols³, one factorization per distinct input (three
//! per layer at 4096, one at 11008). The encoder and the in-batch loop grow only as rows·cols,
//! so it overestimates a little.

use llq_kernels::gptq::{quantize_with, Hessian, Options};
use llq_kernels::linalg::gram_accumulate;
use llq_testsupport::Rng;
use llq_types::GgmlType;
use std::time::Instant;

/// (rows, cols): an attention projection, gate/up and down of TinyLlama-1.1B.
const SHAPES: [(usize, usize); 3] = [(2048, 2048), (5632, 2048), (2048, 5632)];
/// Input samples of the synthetic Hessian (rank-deficient: the damping makes it definite).
const SAMPLES: usize = 512;
/// One LLaMA-7B layer, (matrices, rows, cols): q, k, v, o; gate, up; down. 32 layers.
const LAYER_7B: [(usize, usize, usize); 3] = [(4, 4096, 4096), (2, 11008, 4096), (1, 4096, 11008)];
/// Its distinct inputs, (count, cols): attention norm, attention output, FFN norm; SwiGLU.
const INPUTS_7B: [(usize, usize); 2] = [(3, 4096), (1, 11008)];
const LAYERS_7B: f64 = 32.0;

/// The process's user + system CPU seconds, where /proc says.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // Clock ticks of 1/100 s (USER_HZ on every Linux target).
    f.iter().sum::<f64>() / 100.0
}

/// Run `f`: its result, wall seconds and CPU seconds.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (t, c) = (Instant::now(), cpu_secs());
    let r = f();
    (r, t.elapsed().as_secs_f64(), cpu_secs() - c)
}

fn main() {
    let threads: Vec<usize> = std::env::var("LLQ_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    let ty = std::env::var("LLQ_BENCH_TYPE")
        .ok()
        .map(|n| GgmlType::from_name(&n).unwrap_or_else(|| panic!("unknown type {n}")))
        .unwrap_or(GgmlType::Q4_K);
    println!("llq-kernels gptq bench: {ty}, Hessian from {SAMPLES} samples; wall / CPU seconds");
    println!(
        "{:>6} {:>6} {:>7} {:>13} {:>13} {:>13} {:>10}",
        "rows", "cols", "threads", "factor", "column loop", "ggml", "GFLOP/s*"
    );
    let mut rng = Rng::new(1);
    for &n in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("thread pool");
        // Per shape: (rows, cols, factor seconds, column loop seconds), wall.
        let mut measured = Vec::new();
        for &(rows, cols) in &SHAPES {
            let w = rng.normals(rows * cols, 0.02);
            let x = rng.normals(SAMPLES * cols, 1.0);
            let mut h = vec![0f32; cols * cols];
            pool.install(|| gram_accumulate(&mut h, &x, cols));
            let opts = Options::default();
            let (hessian, fw, fc) = pool.install(|| timed(|| Hessian::new(&h, cols, &opts)));
            let hessian = hessian.expect("damped");
            let (_, lw, lc) =
                pool.install(|| timed(|| quantize_with(ty, &w, &hessian, None, &opts)));
            let rb = ty.row_bytes(cols).unwrap();
            let mut q = vec![0u8; rows * rb];
            let imp: Vec<f32> = (0..cols).map(|i| h[i * cols + i]).collect();
            let (_, gw, gc) = pool.install(|| {
                timed(|| {
                    use rayon::prelude::*;
                    q.par_chunks_mut(rb)
                        .zip(w.par_chunks(cols))
                        .for_each(|(q, w)| llq_kernels::quantize_row(ty, w, q, Some(&imp)));
                })
            });
            // *: the trailing products' flops (2 per multiply-add, rows·cols²/2 of them) per
            // CPU second of the column loop less ggml's rounding (the encoder runs in both).
            let flops = (rows * cols * cols) as f64 / (lc - gc) / 1e9;
            println!(
                "{rows:>6} {cols:>6} {n:>7} {fw:>6.2} /{fc:>6.2} {lw:>6.2} /{lc:>6.2} {gw:>6.2} /{gc:>6.2} {flops:>10.1}"
            );
            measured.push((rows, cols, fw, lw));
        }
        // Extrapolate from the widest shape (the one nearest 7B's proportions).
        let &(r0, c0, f0, l0) = measured.iter().max_by_key(|m| m.1).unwrap();
        let scale = |v: usize, v0: usize| v as f64 / v0 as f64;
        let loops: f64 = LAYER_7B
            .iter()
            .map(|&(count, rows, cols)| {
                count as f64 * l0 * scale(rows, r0) * scale(cols, c0).powi(2)
            })
            .sum();
        let factors: f64 = INPUTS_7B
            .iter()
            .map(|&(count, cols)| count as f64 * f0 * scale(cols, c0).powi(3))
            .sum();
        println!(
            "7B extrapolation, {n} threads (wall): {factors:.0} s factor + {loops:.0} s column loops per layer, {:.0} min for {LAYERS_7B} layers",
            (factors + loops) * LAYERS_7B / 60.0
        );
    }
}
