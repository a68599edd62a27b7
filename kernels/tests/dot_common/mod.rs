//! Shared by the dot_* tests: a deterministic generator, weight and activation rows (realistic
//! ones from the encoders, adversarial ones built byte by byte) and an f64 reference.
#![allow(dead_code)]

use llq_kernels::{dequantize_row, float, quantize_row};
use llq_types::GgmlType;
/// Every weight type with a dot kernel.
pub const WEIGHT_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Roughly normal, standard deviation ~1.
    pub fn normal(&mut self) -> f32 {
        ((0..4).map(|_| self.unit()).sum::<f32>() - 2.0) * 1.7
    }
    pub fn normals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Encode `x` as `ty` (weights) with the crate's encoders.
pub fn encode(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut out, None);
    out
}

/// Quantize activations for weights of type `wt`.
pub fn activations(wt: GgmlType, x: &[f32]) -> Vec<u8> {
    let at = wt.activation().unwrap();
    let mut out = vec![0u8; at.row_bytes(x.len()).unwrap()];
    quantize_row(at, x, &mut out, None);
    out
}

/// Decode a row of any type (weights or activations) to f32.
pub fn decode(ty: GgmlType, b: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    dequantize_row(ty, b, &mut out);
    out
}

/// (Σ w·a in f64, Σ |w·a| in f64) of decoded rows.
pub fn reference(wt: GgmlType, w: &[u8], a: &[u8], n: usize) -> (f64, f64) {
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

const ONE_F16: [u8; 2] = 0x3C00u16.to_le_bytes();

/// A weight row of `n` elements whose level bytes are `fill(rng)` and whose fp16 scales are
/// `d` (bits), for adversarial patterns. Float types get `fill` bytes as values, sanitized to
/// finite numbers.
pub fn raw_weights(ty: GgmlType, n: usize, d: u16, fill: &mut dyn FnMut() -> u8) -> Vec<u8> {
    let mut b: Vec<u8> = (0..ty.row_bytes(n).unwrap()).map(|_| fill()).collect();
    let d = d.to_le_bytes();
    let bs = ty.type_size();
    match ty {
        GgmlType::F32 => {
            for c in b.chunks_exact_mut(4) {
                let v = (i32::from(c[0] as i8)) as f32 / 16.0;
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        GgmlType::F16 | GgmlType::BF16 => {
            for c in b.chunks_exact_mut(2) {
                let v = (i32::from(c[0] as i8)) as f32 / 16.0;
                let mut o = [0u8; 2];
                if ty == GgmlType::F16 {
                    float::f32_to_f16(&[v], &mut o);
                } else {
                    float::f32_to_bf16(&[v], &mut o);
                }
                c.copy_from_slice(&o);
            }
        }
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => {
            for blk in b.chunks_exact_mut(bs) {
                blk[..2].copy_from_slice(&d);
            }
        }
        GgmlType::Q4_1 | GgmlType::Q5_1 => {
            for blk in b.chunks_exact_mut(bs) {
                blk[..2].copy_from_slice(&d);
                blk[2..4].copy_from_slice(&ONE_F16);
            }
        }
        GgmlType::Q2_K => {
            for blk in b.chunks_exact_mut(bs) {
                blk[80..82].copy_from_slice(&d);
                blk[82..84].copy_from_slice(&d);
            }
        }
        GgmlType::Q3_K => {
            for blk in b.chunks_exact_mut(bs) {
                blk[108..110].copy_from_slice(&d);
            }
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            for blk in b.chunks_exact_mut(bs) {
                blk[..2].copy_from_slice(&d);
                blk[2..4].copy_from_slice(&d);
            }
        }
        GgmlType::Q6_K => {
            for blk in b.chunks_exact_mut(bs) {
                blk[208..210].copy_from_slice(&d);
            }
        }
        _ => unreachable!("{ty}"),
    }
    b
}

/// An activation row for `wt` whose levels are `level(rng)` (−127..=127) and scale 1.0, with
/// Q8_1's `s` and Q8_K's bsums consistent with the levels. Float types get the levels as values.
pub fn raw_activations(wt: GgmlType, n: usize, level: &mut dyn FnMut() -> i8) -> Vec<u8> {
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
        _ => {
            let x: Vec<f32> = q.iter().map(|&v| f32::from(v)).collect();
            let mut out = vec![0u8; at.row_bytes(n).unwrap()];
            quantize_row(at, &x, &mut out, None);
            out
        }
    }
}
