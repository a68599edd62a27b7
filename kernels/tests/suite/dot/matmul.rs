//! `matmul` against a naive reference: decode the weights and the quantized activations, dot in
//! f64. The kernels see exactly those values, so the only differences are f32 rounding in the
//! per-block scaling and accumulation: ≤ 1e-5·Σ|w·a| per output (see `kernels`), except
//! Q4_1/Q5_1 whose activation block sums are stored as fp16 (1e-3). A looser check against the
//! unquantized f32 product confirms the activation type is the right one (8-bit activations: a
//! relative error of ~1/254 per element, well below 2% of Σ|w·x|).

use super::{activations, decode, encode};
use crate::common::weight_types;
use llq_kernels::dot;
use llq_kernels::matmul::{matmul, matmul_quantized_with, Activations, Weights};
use llq_testsupport::Rng;
use llq_types::GgmlType;

fn check(ty: GgmlType, rows: usize, cols: usize, n_tok: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let wf = rng.normals(rows * cols, 0.5);
    let data: Vec<u8> = wf.chunks(cols).flat_map(|r| encode(ty, r)).collect();
    let w = Weights::new(ty, &data, rows, cols).unwrap();
    let x = rng.normals(n_tok * cols, 2.0);
    let mut out = vec![f32::NAN; n_tok * rows];
    matmul(&w, &x, &mut out);
    check_out(ty, &w, &x, &out, rows, cols, n_tok);
    // And with every table this CPU supports, not only the active one.
    let act = Activations::quantize(ty, &x, cols);
    for table in dot::tables() {
        let mut o = vec![f32::NAN; n_tok * rows];
        matmul_quantized_with(table, &w, &act, &mut o);
        check_out(ty, &w, &x, &o, rows, cols, n_tok);
    }
}

fn check_out(
    ty: GgmlType,
    w: &Weights,
    x: &[f32],
    out: &[f32],
    rows: usize,
    cols: usize,
    n_tok: usize,
) {
    let at = ty.activation().unwrap();
    // Q8_1 activations (of Q4_1 and Q5_1) store their block sums as fp16.
    let tol = if at == GgmlType::Q8_1 { 1e-3 } else { 1e-5 };
    let mut wrow = vec![0f32; cols];
    for t in 0..n_tok {
        let xt = &x[t * cols..(t + 1) * cols];
        let a = decode(at, &activations(ty, xt), cols);
        for r in 0..rows {
            w.row(r, &mut wrow);
            let (mut s, mut mag, mut s32, mut mag32) = (0f64, 0f64, 0f64, 0f64);
            for c in 0..cols {
                let p = f64::from(wrow[c]) * f64::from(a[c]);
                s += p;
                mag += p.abs();
                let p = f64::from(wrow[c]) * f64::from(xt[c]);
                s32 += p;
                mag32 += p.abs();
            }
            let o = f64::from(out[t * rows + r]);
            assert!(
                (o - s).abs() <= tol * mag,
                "{ty} {rows}x{cols} tok {t}/{n_tok} row {r}: {o} vs {s} (mag {mag})"
            );
            assert!(
                (o - s32).abs() <= 0.02 * mag32,
                "{ty} {rows}x{cols} tok {t}/{n_tok} row {r}: {o} vs f32 {s32} (mag {mag32})"
            );
        }
    }
}

#[test]
fn matmul_matches_decoded_reference_for_every_type() {
    for (i, ty) in weight_types().enumerate() {
        let cols = if ty.block_size() == 256 { 512 } else { 96 };
        for n_tok in [1, 3, 70] {
            // 37 rows: not a multiple of any task or tile size.
            check(ty, 37, cols, n_tok, 10 * i as u64 + n_tok as u64);
        }
    }
}

#[test]
fn matmul_large_rows_one_token() {
    for ty in weight_types() {
        check(ty, 300, 4096, 1, 99);
    }
}

#[test]
fn weights_are_validated() {
    let data = vec![0u8; 18 * 4];
    assert!(Weights::new(GgmlType::Q4_0, &data, 2, 64).is_ok());
    assert!(Weights::new(GgmlType::Q4_0, &data, 3, 64).is_err());
    assert!(Weights::new(GgmlType::Q4_0, &data, 4, 30).is_err());
    assert!(Weights::new(GgmlType::Q8_K, &[0u8; 292], 1, 256).is_err());
    assert!(Weights::new(GgmlType::Q8_1, &[0u8; 36], 1, 32).is_err());
}

#[test]
fn row_dequantizes_one_row() {
    let mut rng = Rng::new(5);
    let wf = rng.normals(3 * 256, 1.0);
    let data: Vec<u8> = wf
        .chunks(256)
        .flat_map(|r| encode(GgmlType::Q6_K, r))
        .collect();
    let w = Weights::new(GgmlType::Q6_K, &data, 3, 256).unwrap();
    let mut row = vec![0f32; 256];
    w.row(2, &mut row);
    assert_eq!(row, decode(GgmlType::Q6_K, &data[2 * 210..], 256));
}

#[test]
fn matmul_is_deterministic() {
    let mut rng = Rng::new(6);
    let wf = rng.normals(64 * 256, 1.0);
    let data: Vec<u8> = wf
        .chunks(256)
        .flat_map(|r| encode(GgmlType::Q4_K, r))
        .collect();
    let w = Weights::new(GgmlType::Q4_K, &data, 64, 256).unwrap();
    let x = rng.normals(5 * 256, 1.0);
    let mut a = vec![0f32; 5 * 64];
    let mut b = vec![0f32; 5 * 64];
    matmul(&w, &x, &mut a);
    matmul(&w, &x, &mut b);
    assert_eq!(a, b);
    // One token at a time gives the same numbers as the batched path, bit for bit unless the
    // batch went through a tiled kernel (the scalar reference's summation order, where one
    // token uses the SIMD lanes): then to f32 rounding.
    let tiled = dot::kernel(GgmlType::Q4_K).unwrap().gemm().is_some();
    for t in 0..5 {
        let mut o = vec![0f32; 64];
        matmul(&w, &x[t * 256..(t + 1) * 256], &mut o);
        let batch = &a[t * 64..(t + 1) * 64];
        if tiled {
            let scale = batch.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (o, b) in o.iter().zip(batch) {
                assert!((o - b).abs() <= 1e-5 * scale, "token {t}: {o} vs {b}");
            }
        } else {
            assert_eq!(o[..], batch[..]);
        }
    }
}

/// The multi-token paths give exactly a 1×1 kernel's result for every (row, token), in every
/// table: the tile of `Kernel::dot4` (tokens in groups of 4, the rest one by one) the table's
/// own, the register-tiled kernel (`Kernel::gemm`, where the table has one) the scalar
/// reference's, except a float type's tile, which only agrees to rounding. Token counts cover
/// whole groups, remainders and more than one token tile.
#[test]
fn matmul_equals_one_by_one_dots_exactly() {
    let (rows, cols) = (19, 256);
    for ty in weight_types() {
        for n_tok in [2, 4, 7, 64, 67, 131] {
            let mut rng = Rng::new(n_tok as u64);
            let wf = rng.normals(rows * cols, 0.5);
            let data: Vec<u8> = wf.chunks(cols).flat_map(|r| encode(ty, r)).collect();
            let w = Weights::new(ty, &data, rows, cols).unwrap();
            let act = Activations::quantize(ty, &rng.normals(n_tok * cols, 2.0), cols);
            for table in dot::tables() {
                let k = match table.kernel(ty).unwrap() {
                    // Float tiles round differently from every 1x1 kernel (`gemm` checks
                    // them against the f64 product).
                    k if k.gemm().is_some() && !ty.is_quantized() => continue,
                    k if k.gemm().is_some() => dot::scalar_table().kernel(ty).unwrap(),
                    k => k,
                };
                let mut o = vec![f32::NAN; n_tok * rows];
                matmul_quantized_with(table, &w, &act, &mut o);
                for t in 0..n_tok {
                    let a = &act.data[t * act.row_bytes..(t + 1) * act.row_bytes];
                    for r in 0..rows {
                        let want = (k.dot)(cols, w.row_data(r), a);
                        assert_eq!(
                            o[t * rows + r].to_bits(),
                            want.to_bits(),
                            "{} {ty} n_tok={n_tok} row {r} token {t}",
                            table.isa
                        );
                    }
                }
            }
        }
    }
}
