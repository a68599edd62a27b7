//! The registry against the types table: every [`GgmlType`] has an entry, and what the entry
//! says (encoder, decoder, factors, importance, dot product) agrees with the type's row.

use super::*;
use crate::dot;
use crate::rounding::lanes::{encode_row_on, paths, Path};
use llq_testsupport::Rng;
use llq_types::QK_K;

fn encode(ty: GgmlType, x: &[f32], importance: Option<&[f32]>, fill: u8) -> Vec<u8> {
    let mut q = vec![fill; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut q, importance);
    q
}

fn decode(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n];
    dequantize_row(ty, q, &mut y);
    y
}

#[test]
fn every_type_has_a_consistent_entry() {
    let mut rng = Rng::new(12);
    for ty in GgmlType::all() {
        let t = traits(ty);
        let n = 4 * ty.block_size();
        let x = rng.normals(n, 0.3);
        let importance: Vec<f32> = rng.normals(n, 1.0).iter().map(|v| v * v).collect();

        // The encoder fills exactly the table's bytes per block: every byte is written
        // (whatever the buffer held) and blocks are encoded independently.
        let q = encode(ty, &x, None, 0);
        assert_eq!(q, encode(ty, &x, None, 0xff), "{ty}: bytes left unwritten");
        let per_block: Vec<u8> = x
            .chunks(ty.block_size())
            .flat_map(|b| encode(ty, b, None, 0))
            .collect();
        assert_eq!(
            q,
            per_block,
            "{ty}: blocks are not {} bytes",
            ty.type_size()
        );

        // The decoder reads the same layout back.
        let y = decode(ty, &q, n);
        let rms = |v: &mut dyn Iterator<Item = f32>| {
            (v.map(|a| f64::from(a) * f64::from(a)).sum::<f64>() / n as f64).sqrt()
        };
        let err = rms(&mut x.iter().zip(&y).map(|(a, b)| a - b));
        assert!(
            err < 0.5 * rms(&mut x.iter().copied()),
            "{ty}: rms error {err}"
        );

        // Doubling the linear factors doubles every decoded value, exactly.
        let mut doubled = q.clone();
        for block in doubled.chunks_exact_mut(ty.type_size()) {
            for &at in t.factors {
                let d = f16_at(block, at);
                write_f16(block, at, 2.0 * d);
            }
        }
        let want: Vec<f32> = y.iter().map(|v| 2.0 * v).collect();
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
        if !t.factors.is_empty() {
            assert!(same(&decode(ty, &doubled, n), &want), "{ty}: factors");
        }
        let mut sorted = t.factors.to_vec();
        sorted.dedup();
        assert_eq!(sorted, t.factors, "{ty}: factors in order, once each");
        assert!(t.factors.iter().all(|&at| at + 2 <= ty.type_size()));

        // Importance steers exactly the types that say so.
        let weighted = encode(ty, &x, Some(&importance), 0);
        assert_eq!(weighted != q, t.uses_importance, "{ty}: importance");

        // A weight type has a scalar dot product (in the scalar table, with its activation
        // type); an activation-only type has none.
        assert_eq!(
            t.dot.is_some(),
            ty.activation().is_some(),
            "{ty}: dot product"
        );
        let kernel = dot::scalar_table().kernel(ty);
        assert_eq!(kernel.map(|k| k.act), ty.activation(), "{ty}: scalar table");
        if let Some(act) = ty.activation() {
            assert_eq!(act.block_size(), ty.block_size(), "{ty}: activation {act}");
        }
    }
}

/// Encode a row of K-quant `ty` with its searches on `path`.
fn encode_on(path: Path, ty: GgmlType, x: &[f32], importance: Option<&[f32]>) -> Vec<u8> {
    let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    let f = match ty {
        GgmlType::Q2_K => encode_row_on::<q2_k::Q2_K>,
        GgmlType::Q3_K => encode_row_on::<q3_k::Q3_K>,
        GgmlType::Q4_K => encode_row_on::<q4_k::Q4_K>,
        GgmlType::Q5_K => encode_row_on::<q5_k::Q5_K>,
        GgmlType::Q6_K => encode_row_on::<q6_k::Q6_K>,
        _ => unreachable!("{ty} has no lane searches"),
    };
    f(path, x, &mut q, importance);
    q
}

/// Rows whose 16-element groups each draw a shape and a log-uniform scale, plus the edge cases
/// of the searches (zeros, constants, one sign, fp16 extremes, tiny values, lone outliers).
fn search_cases(rng: &mut Rng, blocks: usize) -> Vec<Vec<f32>> {
    let n = blocks * QK_K;
    let mut rows = vec![
        vec![0.0; n],
        vec![0.5; n],
        vec![-2.0; n],
        rng.normals(n, 1e-30),
        rng.normals(n, 0.02),
        (0..n)
            .map(|i| if i % 3 == 0 { 65504.0 } else { -65504.0 })
            .collect(),
        (0..n).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect(),
    ];
    let mut outlier = rng.normals(n, 0.05);
    outlier[37] = 1e4;
    outlier[n - 5] = -3e3;
    rows.push(outlier);
    for _ in 0..24 {
        let mut row = Vec::with_capacity(n);
        while row.len() < n {
            let scale = 10f32.powf(rng.uniform() as f32 * 8.0 - 5.0);
            let shape = rng.next_u64() % 8;
            for _ in 0..16 {
                let v = match shape {
                    0 => rng.normal(),
                    1 => rng.normal().powi(3),
                    2 => rng.uniform() as f32 * 2.0 - 1.0,
                    3 => rng.normal().abs() + 0.3,
                    4 => -rng.normal().abs(),
                    5 if rng.next_u64().is_multiple_of(5) => rng.normal(),
                    5 => 0.0,
                    6 => (rng.normal() * 4.0).round(),
                    _ => 0.7,
                };
                row.push(v * scale);
            }
        }
        rows.push(row);
    }
    rows
}

/// Every lane path this CPU has gives the scalar reference's bytes, for every K-quant, with and
/// without importance, on whole and partial batches of blocks.
#[test]
fn lane_searches_match_the_reference() {
    let mut rng = Rng::new(0x1a2e5);
    let paths = paths();
    println!("paths: {paths:?}");
    for blocks in [1, 2, 3, 5] {
        let n = blocks * QK_K;
        let importances: Vec<Option<Vec<f32>>> = vec![
            None,
            Some((0..n).map(|_| 0.1 + rng.uniform() as f32).collect()),
            Some((0..n).map(|_| (3.0 * rng.normal()).exp()).collect()),
            Some(
                (0..n)
                    .map(|i| {
                        if i % 7 == 0 {
                            0.0
                        } else {
                            rng.uniform() as f32
                        }
                    })
                    .collect(),
            ),
        ];
        for x in search_cases(&mut rng, blocks) {
            for ty in [
                GgmlType::Q2_K,
                GgmlType::Q3_K,
                GgmlType::Q4_K,
                GgmlType::Q5_K,
                GgmlType::Q6_K,
            ] {
                for imp in &importances {
                    let want = encode_on(Path::Reference, ty, &x, imp.as_deref());
                    for &path in &paths[1..] {
                        let got = encode_on(path, ty, &x, imp.as_deref());
                        if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
                            panic!(
                                "{ty} on {path:?}, {blocks} blocks, importance {}: byte {at} \
                                 (block {}, offset {}) {:#04x}, reference {:#04x}; x[..8] = {:?}",
                                imp.is_some(),
                                at / ty.type_size(),
                                at % ty.type_size(),
                                got[at],
                                want[at],
                                &x[..8]
                            );
                        }
                    }
                }
            }
        }
    }
}
