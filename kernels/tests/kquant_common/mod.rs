//! Helpers shared by the K-quant integration tests: deterministic random data, the rows every
//! test runs on, and the Python oracle (tests/py/kquant_oracle.py).

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use llq_types::GgmlType;

/// The quantized K types, in ggml id order.
pub const K_TYPES: [GgmlType; 6] = [
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
];

/// Elements per test row: two super-blocks, so per-row and per-block state both get exercised.
pub const ROW: usize = 512;

/// SplitMix64: small, seedable, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    pub fn normals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}

/// Named rows of `ROW` values covering ordinary data and the edge cases of the scale searches.
pub fn cases() -> Vec<(String, Vec<f32>)> {
    let mut rng = Rng::new(0x5eed);
    let mut rows = Vec::new();
    for seed in 0..4u64 {
        for scale in [1e-3f32, 0.02, 1.0, 300.0] {
            let mut r = Rng::new(seed * 1000 + 7);
            rows.push((
                format!("normal seed {seed} scale {scale}"),
                r.normals(ROW, scale),
            ));
        }
    }
    rows.push(("zeros".into(), vec![0.0; ROW]));
    let mut outlier = rng.normals(ROW, 0.05);
    outlier[37] = 1e4;
    outlier[300] = -3e3;
    rows.push(("outliers".into(), outlier));
    rows.push(("constant 0.5".into(), vec![0.5; ROW]));
    rows.push(("constant -2".into(), vec![-2.0; ROW]));
    rows.push(("tiny 1e-30".into(), rng.normals(ROW, 1e-30)));
    let signs: Vec<f32> = (0..ROW)
        .map(|_| {
            if rng.next_u64() & 1 == 0 {
                65504.0
            } else {
                -65504.0
            }
        })
        .collect();
    rows.push(("+-65504".into(), signs));
    let big: Vec<f32> = rng
        .normals(ROW, 1.0)
        .iter()
        .map(|v| (v * 20000.0).clamp(-65504.0, 65504.0))
        .collect();
    rows.push(("normal*20000 clamped to 65504".into(), big));
    let alt: Vec<f32> = (0..ROW)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    rows.push(("alternating +-1".into(), alt));
    let alt_ramp: Vec<f32> = (0..ROW)
        .map(|i| (i % 17) as f32 * if i % 2 == 0 { 0.1 } else { -0.1 })
        .collect();
    rows.push(("alternating ramp".into(), alt_ramp));
    rows.push((
        "all positive".into(),
        rng.normals(ROW, 1.0)
            .iter()
            .map(|v| v.abs() + 0.1)
            .collect(),
    ));
    rows.push((
        "all negative".into(),
        rng.normals(ROW, 1.0).iter().map(|v| -v.abs()).collect(),
    ));
    let mut sparse = vec![0.0f32; ROW];
    for (i, v) in sparse.iter_mut().enumerate().step_by(29) {
        *v = (i as f32 - 200.0) * 0.01;
    }
    rows.push(("sparse".into(), sparse));
    let mut half_zero = rng.normals(ROW, 1.0);
    half_zero[..ROW / 2].fill(0.0);
    rows.push(("first block zero".into(), half_zero));
    for i in 0..48 {
        rows.push((format!("mixed shapes #{i}"), mixed_row(&mut rng)));
    }
    rows
}

/// A row whose 16-element groups each draw a shape (normal, cubed normal, uniform, one-sided,
/// sparse, constant) and a log-uniform scale, to reach the rarer branches of the searches.
fn mixed_row(rng: &mut Rng) -> Vec<f32> {
    let mut row = Vec::with_capacity(ROW);
    while row.len() < ROW {
        let scale = 10f32.powf(rng.uniform() as f32 * 7.0 - 4.0);
        let shape = rng.next_u64() % 6;
        for _ in 0..16 {
            let v = match shape {
                0 => rng.normal(),
                1 => rng.normal().powi(3),
                2 => rng.uniform() as f32 * 2.0 - 1.0,
                3 => rng.normal().abs() + 0.3,
                4 if rng.next_u64().is_multiple_of(5) => rng.normal(),
                4 => 0.0,
                _ => 0.7,
            };
            row.push(v * scale);
        }
    }
    row
}

/// Positive per-column importance vectors: mild and heavy-tailed.
pub fn importances() -> Vec<(String, Vec<f32>)> {
    let mut rng = Rng::new(99);
    let mild = (0..ROW).map(|_| 0.1 + rng.uniform() as f32).collect();
    let heavy = (0..ROW).map(|_| (3.0 * rng.normal()).exp()).collect();
    vec![("mild".into(), mild), ("heavy-tailed".into(), heavy)]
}

/// The interpreter from LLQ_PYTHON, or `None` after printing why the test is skipped.
pub fn python() -> Option<String> {
    match std::env::var("LLQ_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            println!("SKIPPED: LLQ_PYTHON not set");
            None
        }
    }
}

pub fn oracle_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/py/kquant_oracle.py")
}

/// Run the oracle; `Err` carries the exit code and stderr.
pub fn run_oracle(python: &str, args: &[&str]) -> Result<String, (Option<i32>, String)> {
    let out = Command::new(python)
        .arg(oracle_script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// A fresh path in the temp directory, unique per process and call.
pub fn temp_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("llq-kquant-{}-{n}-{tag}", std::process::id()))
}

pub fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn f32_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
