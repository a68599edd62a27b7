//! The legacy block types (Q8_0 Q4_0 Q4_1 Q5_0 Q5_1) against outside oracles, through
//! tests/py/quants_oracle.py:
//! - gguf-py's numpy port of ggml's `quantize_row_*_ref` and its dequantizers (needs LLQ_PYTHON,
//!   an interpreter with `gguf` and `numpy`);
//! - the real ggml's `ggml_quantize_chunk`, with and without an importance matrix (needs also
//!   LLQ_GGML_LIB, a libggml-base.so such as the one llama-cpp-python ships).
//!
//! Bytes must be identical and decoded floats bit-identical (any NaN equals any NaN).

use std::path::{Path, PathBuf};
use std::process::Command;

use llq_kernels::{dequantize_row, quantize_row};
use llq_types::GgmlType;
const TYPES: [GgmlType; 5] = [
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
];

/// Row length: 8 blocks, so one row can hold 8 differently built blocks.
const N: usize = 256;

fn env_or_skip(var: &str) -> Option<String> {
    let v = std::env::var(var).ok().filter(|v| !v.is_empty());
    if v.is_none() {
        println!("SKIPPED: {var} not set");
    }
    v
}

/// xorshift64*: deterministic values without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Box-Muller: a standard normal value.
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
    fn normals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}

/// A row built block by block; `f(block, j)` gives element j of a block.
fn by_block(f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    (0..N).map(|i| f(i / 32, i % 32)).collect()
}

/// Rows meant to hit every rounding rule and edge case, each with a label for failures.
fn adversarial_rows() -> Vec<(String, Vec<f32>)> {
    let mut rows = Vec::new();
    let mut rng = Rng::new(99);
    for seed in 1..=3u64 {
        for scale in [1e-3f32, 1e-1, 1.0, 30.0, 1e3] {
            rows.push((
                format!("normal seed {seed} scale {scale}"),
                Rng::new(seed).normals(N, scale),
            ));
        }
    }
    rows.push(("zeros".into(), vec![0.0; N]));
    let mut outlier = rng.normals(N, 1e-2);
    outlier[5] = 1e4;
    outlier[200] = -3e3;
    rows.push(("outliers".into(), outlier));

    // Exact ties: each block's extreme fixes d to a power of two, the rest sit at k + 1/2 steps.
    // Q4_0 rounds them up (trunc(x/d + 8.5)), Q8_0 away from zero.
    let half = |j: usize, lo: f32, span: usize| lo + (j % span) as f32 + 0.5;
    rows.push((
        "ties".into(),
        by_block(|b, j| match (b, j) {
            (0, 0) => -8.0, // Q4_0 d = 1
            (0, _) => half(j, -8.0, 16),
            (1, 0) => 127.0, // Q8_0 d = 1
            (1, _) => half(j * 7, -127.0, 254),
            (2, 0) => 0.0, // Q4_1 min 0, d = 1
            (2, 1) => 15.0,
            (2, _) => half(j, 0.0, 15),
            (3, 0) => -16.0, // Q5_0 d = 1
            (3, _) => half(j, -16.0, 32),
            (4, 0) => 0.0, // Q5_1 min 0, d = 1
            (4, 1) => 31.0,
            (4, _) => half(j, 0.0, 31),
            (5, 0) => -8.0 / 1024.0,
            (5, _) => half(j, -8.0, 16) / 1024.0,
            (6, 0) => 127.0 * 32.0,
            (6, _) => half(j * 5, -127.0, 254) * 32.0,
            // Inexact d: ties up to the last bit of x * (1/d).
            (_, 0) => 0.8,
            (_, _) => half(j, -8.0, 16) * 0.1,
        }),
    ));
    // Tiny magnitudes: f32 subnormals; scales whose f32 reciprocal overflows (amax below ~3.7e-37
    // for Q8_0, ~2.4e-38 for Q4_0); scales that underflow f16.
    rows.push((
        "subnormal".into(),
        by_block(|b, j| {
            let s = if j % 3 == 0 { -1.0 } else { 1.0 } * (1.0 + j as f32 / 7.0);
            s * [1e-40, 3e-39, 1e-37, 2e-38, 1e-45, 1e-30, 1e-5, 7e-8][b]
        }),
    ));
    let mut mixed_tiny = rng.normals(N, 1e-3);
    mixed_tiny[3] = 1e-40;
    mixed_tiny[40] = -1e-41;
    rows.push(("normal with subnormals".into(), mixed_tiny));
    // Around the f16 maximum: d or m beyond 65504 becomes inf (65520 rounds up to inf).
    rows.push((
        "f16 max".into(),
        by_block(|b, j| {
            let s = if j % 2 == 0 { 1.0 } else { -1.0 };
            let t = j as f32 / 32.0;
            match b {
                0 => s * 65504.0 * (1.0 - t / 2.0),
                1 => 65520.0 * (t - 0.5),
                2 => s * 70000.0,
                3 => -65504.0 * 8.0 * t,
                4 => 65504.0 * 9.0 * (t - 0.3),
                5 => 65504.0 * 16.0 * t,
                6 => -65504.0,
                _ => s * 1e6 * t,
            }
        }),
    ));
    // Equal |max| with both signs: the first one decides the sign of d.
    rows.push((
        "equal absmax".into(),
        by_block(|b, j| {
            let first = if b % 2 == 0 { 3.0 } else { -3.0 };
            match j {
                j if j == b % 4 => first,
                j if j == 31 - b => -first,
                _ => ((j * 37 % 11) as f32 - 5.0) * 0.25,
            }
        }),
    ));
    rows.push((
        "constant".into(),
        by_block(|b, _| [0.7, -2.5, 1e-3, 100.0, -1e-30, 65504.0, 3.0, -0.0][b]),
    ));
    rows.push((
        "alternating".into(),
        by_block(|b, j| {
            let a = [1.0, 0.3, 1e-2, 1e3, 12345.0, 0.5, 2.0, 1e-6][b];
            if j % 2 == 0 {
                a
            } else {
                -a
            }
        }),
    ));
    rows.push((
        "signed zeros".into(),
        by_block(|b, j| match b {
            0 => -0.0,
            1 if j % 2 == 0 => -0.0,
            1 => 0.0,
            2 if j == 0 => 0.0,
            2 => -0.0,
            _ => 0.0,
        }),
    ));
    rows
}

/// A scratch directory for one oracle run, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("llq-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }
    fn read_f32(&self, file: &str) -> Vec<f32> {
        let bytes = self.read(file);
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Run tests/py/quants_oracle.py once on `rows` with extra arguments `args`.
fn run_oracle(python: &str, scratch: &Scratch, rows: &[(String, Vec<f32>)], args: &[&str]) {
    let flat: Vec<f32> = rows.iter().flat_map(|(_, r)| r.iter().copied()).collect();
    write_f32(&scratch.path("rows.f32"), &flat);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/py/quants_oracle.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(scratch.path("rows.f32"))
        .arg(N.to_string())
        .arg(&scratch.0)
        .args(args)
        .output()
        .expect("run the python oracle");
    assert!(
        out.status.success(),
        "oracle failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Quantize every row with llq and compare with `expected` (all rows' bytes, concatenated).
/// Returns the mismatch descriptions, at most a few per type.
fn compare_quantized(
    ty: GgmlType,
    rows: &[(String, Vec<f32>)],
    importance: Option<&[f32]>,
    expected: &[u8],
    oracle: &str,
) -> Vec<String> {
    let row_bytes = ty.row_bytes(N).unwrap();
    assert_eq!(
        expected.len(),
        rows.len() * row_bytes,
        "{ty} {oracle} output size"
    );
    let mut bad = Vec::new();
    for ((label, row), want) in rows.iter().zip(expected.chunks(row_bytes)) {
        let mut got = vec![0u8; row_bytes];
        quantize_row(ty, row, &mut got, importance);
        let size = ty.type_size();
        for (b, (g, w)) in got.chunks(size).zip(want.chunks(size)).enumerate() {
            let x = &row[32 * b..32 * b + 32];
            if oracle == "gguf-py" && zero_sign_only(ty, x, g, w) {
                continue;
            }
            if g != w && bad.len() < 8 {
                bad.push(format!(
                    "{ty} vs {oracle}, row '{label}' block {b}:\n  x    {:?}\n  llq  {g:?}\n  want {w:?}",
                    x
                ));
            }
        }
    }
    bad
}

/// gguf-py and ggml disagree on blocks of signed zeros: ggml keeps the first of equal values
/// (starting from +0.0 for the absmax, so an all-zero block gets d = 0/-8 = -0.0), numpy's
/// argmax/min/max pick whichever zero their loop lands on. llq follows ggml (checked against it
/// in the ggml test); here such blocks may differ in the sign bit of d (byte 1) or m (byte 3).
fn zero_sign_only(ty: GgmlType, x: &[f32], got: &[u8], want: &[u8]) -> bool {
    let has_m = matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1);
    let sign_byte = |i: usize| i == 1 || (has_m && i == 3);
    x.iter().all(|&v| v == 0.0)
        && got
            .iter()
            .zip(want)
            .enumerate()
            .all(|(i, (g, w))| g == w || (sign_byte(i) && g ^ w == 0x80))
}

/// Decode `bytes` with llq and compare with `expected` floats.
fn compare_dequantized(ty: GgmlType, bytes: &[u8], expected: &[f32], what: &str) -> Vec<String> {
    let blocks = bytes.len() / ty.type_size();
    assert_eq!(expected.len(), blocks * 32, "{ty} {what} decoded size");
    let mut got = vec![0f32; expected.len()];
    dequantize_row(ty, &bytes[..blocks * ty.type_size()], &mut got);
    got.iter()
        .zip(expected)
        .enumerate()
        .filter(|(_, (g, w))| !same_f32(**g, **w))
        .take(8)
        .map(|(i, (g, w))| {
            format!(
                "{ty} {what}: element {i} (block {}): llq {g:e} gguf-py {w:e}",
                i / 32
            )
        })
        .collect()
}

fn report(bad: Vec<String>) {
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn legacy_types_match_gguf_py() {
    let Some(python) = env_or_skip("LLQ_PYTHON") else {
        return;
    };
    let scratch = Scratch::new("legacy-gguf-py");
    let rows = adversarial_rows();
    // Arbitrary bytes for the decoders: every f16 scale pattern, NaN and inf included.
    let mut rng = Rng::new(5);
    let raw: Vec<u8> = (0..24 * 34 * 64)
        .map(|_| (rng.uniform() * 256.0) as u8)
        .collect();
    std::fs::write(scratch.path("raw.bin"), &raw).unwrap();
    let raw_arg = scratch.path("raw.bin");
    run_oracle(
        &python,
        &scratch,
        &rows,
        &["--raw", raw_arg.to_str().unwrap()],
    );

    let mut bad = Vec::new();
    for ty in TYPES {
        let want = scratch.read(&format!("{ty}.q"));
        bad.extend(compare_quantized(ty, &rows, None, &want, "gguf-py"));
        // Decode the oracle's bytes, so a quantizer mismatch cannot hide a decoder one.
        bad.extend(compare_dequantized(
            ty,
            &want,
            &scratch.read_f32(&format!("{ty}.deq")),
            "rows",
        ));
        let raw_want = scratch.read_f32(&format!("{ty}.raw.deq"));
        bad.extend(compare_dequantized(ty, &raw, &raw_want, "random bytes"));
    }
    report(bad);
}

#[test]
fn legacy_types_match_ggml_with_and_without_imatrix() {
    let Some(python) = env_or_skip("LLQ_PYTHON") else {
        return;
    };
    let Some(lib) = env_or_skip("LLQ_GGML_LIB") else {
        return;
    };
    let scratch = Scratch::new("legacy-ggml");
    let rows = adversarial_rows();
    // Per-column importance as an imatrix holds it (mean squared activation), with a few dead
    // columns and a wide dynamic range.
    let mut rng = Rng::new(17);
    let importance: Vec<f32> = (0..N)
        .map(|i| {
            if i % 61 == 7 {
                0.0
            } else {
                (rng.normal() * 3.0).exp()
            }
        })
        .collect();
    write_f32(&scratch.path("imatrix.f32"), &importance);
    let imat_arg = scratch.path("imatrix.f32");
    run_oracle(
        &python,
        &scratch,
        &rows,
        &["--ggml", &lib, "--imatrix", imat_arg.to_str().unwrap()],
    );

    let mut bad = Vec::new();
    for ty in TYPES {
        let plain = scratch.read(&format!("{ty}.ggml.q"));
        bad.extend(compare_quantized(ty, &rows, None, &plain, "ggml"));
        let weighted = scratch.read(&format!("{ty}.ggml_imat.q"));
        bad.extend(compare_quantized(
            ty,
            &rows,
            Some(&importance),
            &weighted,
            "ggml+imatrix",
        ));
    }
    report(bad);
}
