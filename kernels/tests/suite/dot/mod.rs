//! The dot kernels: every ISA table against the scalar reference and the scalar reference
//! against an f64 dot product of the decoded rows (`kernels`), the register tiles (`gemm`) and
//! `matmul` (`matmul`). Here: weight and activation rows, realistic ones from the encoders and
//! adversarial ones built byte by byte, and the f64 reference.

mod gemm;
mod kernels;
mod matmul;

use llq_kernels::{dequantize_row, factor_offsets, float, quantize_row};
use llq_types::GgmlType;

/// Encode `x` as `ty` with the crate's encoders.
fn encode(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut out, None);
    out
}

/// Quantize activations for weights of type `wt`.
fn activations(wt: GgmlType, x: &[f32]) -> Vec<u8> {
    encode(wt.activation().unwrap(), x)
}

/// Decode a row of any type (weights or activations) to f32.
fn decode(ty: GgmlType, b: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    dequantize_row(ty, b, &mut out);
    out
}

/// (Σ w·a in f64, Σ |w·a| in f64) of decoded rows.
fn reference(wt: GgmlType, w: &[u8], a: &[u8], n: usize) -> (f64, f64) {
    let at = wt.activation().unwrap();
    let (wv, av) = (decode(wt, w, n), decode(at, a, n));
    let mut s = 0f64;
    let mut m = 0f64;
    for (x, y) in wv.iter().zip(&av) {
        let p = f64::from(*x) * f64::from(*y);
        s += p;
        m += p.abs();
    }
    (s, m)
}

/// Rows of a few lengths: whole blocks, with and without the kernels' tails.
fn lengths(ty: GgmlType) -> &'static [usize] {
    match ty.block_size() {
        1 => &[1, 7, 8, 31, 32, 33, 100, 256, 1000, 4096],
        32 => &[32, 64, 96, 256, 800, 4096],
        _ => &[256, 512, 768, 4096],
    }
}

const ONE_F16: [u8; 2] = 0x3C00u16.to_le_bytes();

/// A weight row of `n` elements whose level bytes are `fill()` and whose fp16 factors are all
/// `d` (bits), for adversarial patterns. Float types get `fill` bytes as values, sanitized to
/// small finite numbers.
fn raw_weights(ty: GgmlType, n: usize, d: u16, fill: &mut dyn FnMut() -> u8) -> Vec<u8> {
    let mut b: Vec<u8> = (0..ty.row_bytes(n).unwrap()).map(|_| fill()).collect();
    if !ty.is_quantized() {
        let x: Vec<f32> = b
            .chunks_exact(ty.type_size())
            .map(|c| f32::from(c[0] as i8) / 16.0)
            .collect();
        return encode(ty, &x);
    }
    for blk in b.chunks_exact_mut(ty.type_size()) {
        for &at in factor_offsets(ty) {
            blk[at..at + 2].copy_from_slice(&d.to_le_bytes());
        }
    }
    b
}

/// An activation row for `wt` whose levels are `level()` (−127..=127) and scale 1.0, with
/// Q8_1's `s` and Q8_K's 16-element sums consistent with the levels. Built byte by byte,
/// independently of the crate's encoders. Float types get the levels as values.
fn raw_activations(wt: GgmlType, n: usize, level: &mut dyn FnMut() -> i8) -> Vec<u8> {
    let at = wt.activation().unwrap();
    let q: Vec<i8> = (0..n).map(|_| level()).collect();
    match at {
        GgmlType::Q8_0 => q
            .chunks(32)
            .flat_map(|c| ONE_F16.into_iter().chain(c.iter().map(|&v| v as u8)))
            .collect(),
        GgmlType::Q8_1 => q
            .chunks(32)
            .flat_map(|c| {
                let s: i32 = c.iter().map(|&v| i32::from(v)).sum();
                let mut sb = [0u8; 2];
                float::f32_to_f16(&[s as f32], &mut sb);
                ONE_F16
                    .into_iter()
                    .chain(sb)
                    .chain(c.iter().map(|&v| v as u8))
            })
            .collect(),
        GgmlType::Q8_K => q
            .chunks(256)
            .flat_map(|c| {
                let sums = c.chunks(16).flat_map(|s| {
                    let t: i32 = s.iter().map(|&v| i32::from(v)).sum();
                    (t as i16).to_le_bytes()
                });
                1.0f32
                    .to_le_bytes()
                    .into_iter()
                    .chain(c.iter().map(|&v| v as u8))
                    .chain(sums)
                    .collect::<Vec<u8>>()
            })
            .collect(),
        _ => encode(at, &q.iter().map(|&v| f32::from(v)).collect::<Vec<_>>()),
    }
}

/// A finite fp16 (bits) of either sign, normal or subnormal.
fn random_f16(rng: &mut llq_testsupport::Rng) -> u16 {
    loop {
        let bits = rng.next_u64() as u16;
        if bits & 0x7c00 != 0x7c00 {
            return bits;
        }
    }
}
