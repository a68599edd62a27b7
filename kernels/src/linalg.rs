//! Dense f32 linear algebra for error-compensated quantization (GPTQ): Gram matrices, Cholesky
//! factorization and triangular inversion. The O(n³) work is blocked so that it runs as
//! products of matrices through the crate's F32 matmul kernels; only the small diagonal
//! blocks are done element by element (with f64 sums). Matrices are row-major `n × n`.

use crate::matmul::{matmul, Weights};
use llq_types::GgmlType;
use rayon::prelude::*;

/// Block size of the blocked factorizations: diagonal blocks are this many rows.
const NB: usize = 128;

/// `out = A · Bᵀ` for `a` (m × k) and `b` (n × k), both row-major; `out` is m × n.
pub fn gemm_abt(a: &[f32], b: &[f32], k: usize, out: &mut [f32]) {
    let n = b.len() / k;
    let mut bytes = vec![0u8; b.len() * 4];
    for (o, v) in bytes.chunks_exact_mut(4).zip(b) {
        o.copy_from_slice(&v.to_le_bytes());
    }
    let w = Weights::new(GgmlType::F32, &bytes, n, k).expect("F32 rows of k");
    matmul(&w, a, out);
}

/// `h += Xᵀ X` for the rows of `x` (each `n` long): the Gram matrix of the inputs.
pub fn gram_accumulate(h: &mut [f32], x: &[f32], n: usize) {
    let rows = x.len() / n;
    if rows == 0 {
        return;
    }
    // Xᵀ (n × rows): then Xᵀ · (Xᵀ)ᵀ is one matmul.
    let mut xt = vec![0f32; n * rows];
    for (r, row) in x.chunks_exact(n).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            xt[c * rows + r] = v;
        }
    }
    let mut g = vec![0f32; n * n];
    gemm_abt(&xt, &xt, rows, &mut g);
    h.par_iter_mut().zip(&g).for_each(|(h, g)| *h += g);
}

/// The lower Cholesky factor of a symmetric positive definite `a` (n × n), in place: on
/// return `a` holds L (zeros above the diagonal) with A = L·Lᵀ. `Err(j)` if the matrix is
/// not positive definite at column j (then `a` is partly overwritten).
pub fn cholesky(a: &mut [f32], n: usize) -> Result<(), usize> {
    for kb in (0..n).step_by(NB) {
        let e = (kb + NB).min(n);
        // The diagonal block, already updated by the blocks to its left.
        for j in kb..e {
            let dot = |a: &[f32], i: usize| -> f64 {
                (kb..j)
                    .map(|p| f64::from(a[i * n + p]) * f64::from(a[j * n + p]))
                    .sum()
            };
            let s = f64::from(a[j * n + j]) - dot(a, j);
            if !(s > 0.0 && s.is_finite()) {
                return Err(j);
            }
            let d = s.sqrt();
            a[j * n + j] = d as f32;
            for i in j + 1..e {
                a[i * n + j] = ((f64::from(a[i * n + j]) - dot(a, i)) / d) as f32;
            }
        }
        if e == n {
            break;
        }
        // The panel below it: L21 = A21 · L11⁻ᵀ, row by row.
        let (top, below) = a.split_at_mut(e * n);
        below.par_chunks_mut(n).for_each(|row| {
            for j in kb..e {
                let s: f64 = (kb..j)
                    .map(|p| f64::from(row[p]) * f64::from(top[j * n + p]))
                    .sum();
                row[j] = ((f64::from(row[j]) - s) / f64::from(top[j * n + j])) as f32;
            }
        });
        // The trailing matrix: A22 -= L21 · L21ᵀ.
        let m = n - e;
        let panel: Vec<f32> = below
            .chunks_exact(n)
            .flat_map(|row| row[kb..e].iter().copied())
            .collect();
        let mut update = vec![0f32; m * m];
        gemm_abt(&panel, &panel, e - kb, &mut update);
        below
            .par_chunks_mut(n)
            .zip(update.par_chunks(m))
            .for_each(|(row, u)| {
                for (v, &d) in row[e..].iter_mut().zip(u) {
                    *v -= d;
                }
            });
    }
    for i in 0..n {
        a[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    Ok(())
}

/// The inverse of a lower triangular `l` (n × n, non-zero diagonal), in place.
pub fn invert_lower(l: &mut [f32], n: usize) {
    // Column block by column block: X_kk = L_kk⁻¹, then for the blocks i below,
    // X_ik = −L_ii⁻¹ · Σ_{k ≤ j < i} L_ij X_jk (the sum one matrix product).
    let src = l.to_vec();
    let blocks: Vec<(usize, usize)> = (0..n).step_by(NB).map(|b| (b, (b + NB).min(n))).collect();
    let inv_diag: Vec<Vec<f64>> = blocks
        .par_iter()
        .map(|&(s, e)| invert_small_lower(&src, n, s, e))
        .collect();
    l.fill(0.0);
    for (kbi, &(ks, ke)) in blocks.iter().enumerate() {
        let w = ke - ks;
        for r in 0..w {
            for c in 0..=r {
                l[(ks + r) * n + ks + c] = inv_diag[kbi][r * w + c] as f32;
            }
        }
        for (ibi, &(is, ie)) in blocks.iter().enumerate().skip(kbi + 1) {
            // T = L[is..ie, ks..is] · X[ks..is, ks..ke]  ((ie−is) × w).
            let inner = is - ks;
            let a: Vec<f32> = (is..ie)
                .flat_map(|r| src[r * n + ks..r * n + is].iter().copied())
                .collect();
            // Columns of X[ks..is, ks..ke] as rows, for A · Bᵀ; read row by row (a column
            // walk strides the whole matrix and was most of the inversion's time).
            let mut bt = vec![0f32; w * inner];
            for r in ks..is {
                for (c, &v) in l[r * n + ks..r * n + ke].iter().enumerate() {
                    bt[c * inner + r - ks] = v;
                }
            }
            let mut t = vec![0f32; (ie - is) * w];
            gemm_abt(&a, &bt, inner, &mut t);
            let d = &inv_diag[ibi];
            let h = ie - is;
            // X_ik = −L_ii⁻¹ · T, a row at a time so the sums over p run across whole rows
            // of T (vectorized over c), each still added in order of p.
            let mut acc = vec![0f64; w];
            for r in 0..h {
                acc.fill(0.0);
                for (p, &dp) in d[r * h..=r * h + r].iter().enumerate() {
                    for (a, &tv) in acc.iter_mut().zip(&t[p * w..(p + 1) * w]) {
                        *a += dp * f64::from(tv);
                    }
                }
                for (x, &a) in l[(is + r) * n + ks..][..w].iter_mut().zip(&acc) {
                    *x = -a as f32;
                }
            }
        }
    }
}

/// The inverse (f64, row-major `(e − s)²`) of the lower triangular diagonal block [s, e).
fn invert_small_lower(l: &[f32], n: usize, s: usize, e: usize) -> Vec<f64> {
    let w = e - s;
    let mut x = vec![0f64; w * w];
    for c in 0..w {
        x[c * w + c] = 1.0 / f64::from(l[(s + c) * n + s + c]);
        for r in c + 1..w {
            let sum: f64 = (c..r)
                .map(|p| f64::from(l[(s + r) * n + s + p]) * x[p * w + c])
                .sum();
            x[r * w + c] = -sum / f64::from(l[(s + r) * n + s + r]);
        }
    }
    x
}

/// The upper triangular U with H⁻¹ = Uᵀ·U, for a symmetric positive definite `h` (n × n):
/// what GPTQ's error feedback reads (row j of U scales and spreads column j's rounding error).
/// Computed without forming H⁻¹: with J the order reversal, J·H·J = C·Cᵀ (C lower), so
/// H = Ũ·Ũᵀ with Ũ = J·C·J upper, and U = Ũ⁻¹. `Err(j)` if H is not positive definite.
pub fn inverse_cholesky_upper(h: &[f32], n: usize) -> Result<Vec<f32>, usize> {
    let rev = |m: &[f32]| -> Vec<f32> {
        (0..n * n)
            .map(|i| m[(n - 1 - i / n) * n + (n - 1 - i % n)])
            .collect()
    };
    let mut c = rev(h);
    cholesky(&mut c, n).map_err(|j| n - 1 - j)?;
    // (J·C·J)⁻¹ = J·C⁻¹·J: invert the lower C, then reverse back to upper.
    invert_lower(&mut c, n);
    Ok(rev(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-conditioned symmetric positive definite matrix: XᵀX/rows + I.
    fn spd(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let rows = n + 7;
        let x: Vec<f32> = (0..rows * n).map(|_| next()).collect();
        let mut h = vec![0f32; n * n];
        gram_accumulate(&mut h, &x, n);
        for (i, v) in h.iter_mut().enumerate() {
            *v /= rows as f32;
            if i % (n + 1) == 0 {
                *v += 1.0;
            }
        }
        h
    }

    fn matmul_f64(a: &[f32], b: &[f32], n: usize) -> Vec<f64> {
        let mut out = vec![0f64; n * n];
        for i in 0..n {
            for k in 0..n {
                let aik = f64::from(a[i * n + k]);
                for j in 0..n {
                    out[i * n + j] += aik * f64::from(b[k * n + j]);
                }
            }
        }
        out
    }

    fn transpose(a: &[f32], n: usize) -> Vec<f32> {
        (0..n * n).map(|i| a[(i % n) * n + i / n]).collect()
    }

    #[test]
    fn gram_matches_the_sum_of_outer_products() {
        let (n, rows) = (5, 9);
        let x: Vec<f32> = (0..rows * n).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut h = vec![1f32; n * n];
        gram_accumulate(&mut h, &x, n);
        for i in 0..n {
            for j in 0..n {
                let want: f64 = 1.0
                    + (0..rows)
                        .map(|r| f64::from(x[r * n + i]) * f64::from(x[r * n + j]))
                        .sum::<f64>();
                assert!((f64::from(h[i * n + j]) - want).abs() < 1e-4, "{i},{j}");
            }
        }
    }

    #[test]
    fn cholesky_and_inverse_across_block_boundaries() {
        for n in [3, 127, 128, 300] {
            let h = spd(n, n as u64);
            let mut l = h.clone();
            cholesky(&mut l, n).unwrap();
            let llt = matmul_f64(&l, &transpose(&l, n), n);
            let err = h
                .iter()
                .zip(&llt)
                .map(|(&a, &b)| (f64::from(a) - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-4, "n {n}: |LLᵀ − H| {err}");
            let mut inv = l.clone();
            invert_lower(&mut inv, n);
            let id = matmul_f64(&l, &inv, n);
            for i in 0..n {
                for j in 0..n {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (id[i * n + j] - want).abs() < 1e-4,
                        "n {n}: L·L⁻¹ at {i},{j}"
                    );
                }
            }
            let u = inverse_cholesky_upper(&h, n).unwrap();
            for i in 0..n {
                for j in 0..i {
                    assert_eq!(u[i * n + j], 0.0, "upper");
                }
            }
            // Uᵀ·U·H = I.
            let hinv = matmul_f64(&transpose(&u, n), &u, n);
            let hinv: Vec<f32> = hinv.iter().map(|&v| v as f32).collect();
            let id = matmul_f64(&hinv, &h, n);
            for i in 0..n {
                for j in 0..n {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!(
                        (id[i * n + j] - want).abs() < 1e-3,
                        "n {n}: UᵀUH at {i},{j}"
                    );
                }
            }
        }
    }

    #[test]
    fn not_positive_definite_names_the_column() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky(&mut a, 2), Err(1));
    }
}
