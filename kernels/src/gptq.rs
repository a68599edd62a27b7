//! GPTQ (Frantar et al. 2022, "Accurate Post-Training Quantization for Generative Pre-trained
//! Transformers") into ggml's block formats: a weight matrix is quantized one input column at a
//! time, and each column's rounding error is spread over the columns not yet quantized through
//! the inverse Hessian of the layer's inputs, H = Σ x·xᵀ. The output is ordinary ggml blocks.
//!
//! # The algorithm, as built
//!
//! - **Hessian.** An input that is never active (`H[i][i] = 0`) gets `H[i][i] = 1` and its
//!   weights are set to 0 first (they never meet an input, so their value is irrelevant; the
//!   paper does the same). Then `λ = damp · mean(diag H)` is added to the diagonal and
//!   [`inverse_cholesky_upper`] gives U, upper triangular with H⁻¹ = UᵀU. If H + λI is not
//!   positive definite in f32 (or U is not finite), λ is multiplied by 10 and the factorization
//!   retried, a few times, before [`Error::NotPositiveDefinite`].
//! - **No act-order.** GPTQ's act-order quantizes columns by decreasing `H[i][i]`, but a ggml
//!   block is a contiguous run of 32 or 256 columns whose scales are shared: the columns go left
//!   to right.
//! - **Block scales under error feedback.** When the column loop reaches the first column of a
//!   block, that block's scales (and the K-quants' sub-block scales and mins) are chosen for
//!   every row by the type's own ggml encoder, steered by the importance (an imatrix entry, or
//!   `diag H`), run on the block's weights as the error feedback has left them so far. With
//!   those scales fixed, the levels of every element are affine in an integer code
//!   (`zero + step·c`, declared per type as [`crate::blocks::Codes`]), and each column is
//!   re-rounded to the nearest code; its error `(w − q)/U[j][j]` is subtracted, scaled by row j
//!   of U, from the columns after it. Later columns of the block may drift outside the range the
//!   scales were chosen for: they clamp to the end codes, and their larger error is fed forward
//!   like any other. The legacy types' encoders weigh each value with the mean square of the
//!   block rather than of the whole row (the rest of the row is not final yet).
//! - **Lazy batches.** Within a batch of columns (`Options::batch`, rounded up to whole blocks so
//!   that a block's weights are up to date when its scales are chosen), the feedback goes only
//!   to the batch's own columns; the columns after the batch get the whole batch's errors at once,
//!   `W[:, i2..] −= E · U[i1..i2, i2..]`, one matrix product through [`matmul`]. That product is
//!   where the time goes: about rows·cols²/2 multiply-adds per matrix.
//! - **One factorization per input.** U depends only on H: [`Hessian::new`] computes it once
//!   for all the matrices that read the same input (q, k and v; gate and up), and
//!   [`quantize_with`] quantizes each of them. [`quantize_matrix`] does both.
//! - **Rows are independent** once U is known: the in-batch loop runs over fixed chunks of rows
//!   in parallel, and each output element of the product is one dot product, so the bytes are
//!   the same for any number of threads.
//!
//! Types whose levels are not affine in a code (the float types, IQ4_NL and IQ4_XS with their
//! non-linear table) are not supported: [`supports`] says so, and callers fall back to ordinary
//! rounding.

use crate::blocks::{traits, Codes};
use crate::linalg::inverse_cholesky_upper;
use crate::matmul::{matmul, Weights};
use llq_types::{GgmlType, QK_K};
use rayon::prelude::*;
use std::fmt;

/// Whether [`quantize_matrix`] can write `ty`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K…Q6_K, the
/// types whose levels are affine in an integer code.
pub fn supports(ty: GgmlType) -> bool {
    traits(ty).codes.is_some()
}

/// Tuning of [`quantize_matrix`].
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Damping added to the Hessian's diagonal, as a fraction of its mean (the paper's 1%).
    pub damp: f32,
    /// Columns per lazy batch, rounded up to whole blocks of the type (256 for the K-quants).
    pub batch: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            damp: 0.01,
            batch: 128,
        }
    }
}

#[derive(Debug)]
pub enum Error {
    /// The type's levels are not affine in an integer code (see [`supports`]).
    Unsupported(GgmlType),
    /// An argument's length does not fit the others.
    Shape {
        what: &'static str,
        want: usize,
        got: usize,
    },
    /// H + λI could not be factored even after raising the damping λ a thousandfold.
    NotPositiveDefinite,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Unsupported(ty) => {
                write!(f, "GPTQ cannot write {ty}: its levels are not affine")
            }
            Error::Shape { what, want, got } => write!(f, "GPTQ: {what}: want {want}, got {got}"),
            Error::NotPositiveDefinite => write!(
                f,
                "GPTQ: the Hessian is not positive definite even with {}x the damping",
                DAMP_GROWTH.powi(DAMP_RETRIES as i32)
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Retries of the factorization, each with 10× the damping.
const DAMP_RETRIES: usize = 3;
const DAMP_GROWTH: f32 = 10.0;
/// Rows per parallel task of the column loop: fixed, so the output is independent of threads.
const ROWS_PER_TASK: usize = 8;
/// Rows per matrix product of the trailing update: bounds its scratch to this many rows.
const GEMM_ROWS: usize = 512;

/// Quantize the row-major `rows × cols` matrix `w` to `ty` with GPTQ's error feedback, using the
/// Hessian `h` of its inputs (`cols × cols`, H = Σ x·xᵀ, symmetric positive semi-definite, any
/// scale). `importance` (one per column, an imatrix entry) steers the choice of block scales as
/// in ggml's encoder; `None` uses `diag H`. Returns `rows × ty.row_bytes(cols)` bytes of ggml
/// blocks. See the module documentation for the algorithm. Matrices that share an input (q, k
/// and v; gate and up) can share the factorization: [`Hessian::new`] and [`quantize_with`].
pub fn quantize_matrix(
    ty: GgmlType,
    w: &[f32],
    cols: usize,
    h: &[f32],
    importance: Option<&[f32]>,
    opts: &Options,
) -> Result<Vec<u8>, Error> {
    if !supports(ty) {
        return Err(Error::Unsupported(ty));
    }
    check_cols(ty, cols)?;
    quantize_with(ty, w, &Hessian::new(h, cols, opts)?, importance, opts)
}

/// A Hessian made ready for [`quantize_with`]: its dead inputs, its diagonal and the factor U
/// of the damped inverse. The O(cols³) part of GPTQ, done once per distinct input.
pub struct Hessian {
    cols: usize,
    /// Inputs never active: their weights are zeroed.
    dead: Vec<usize>,
    /// The diagonal as given: the default importance.
    diag: Vec<f32>,
    /// Upper triangular, (H + λI)⁻¹ = UᵀU (dead diagonals set to 1 first).
    u: Vec<f32>,
}

impl Hessian {
    /// Prepare `h` (`cols × cols`, see [`quantize_matrix`]) with the damping of `opts`.
    pub fn new(h: &[f32], cols: usize, opts: &Options) -> Result<Hessian, Error> {
        if h.len() != cols * cols || cols == 0 {
            return shape("Hessian elements (cols², cols > 0)", cols * cols, h.len());
        }
        let mut h = h.to_vec();
        let diag: Vec<f32> = (0..cols).map(|i| h[i * cols + i]).collect();
        let dead: Vec<usize> = (0..cols).filter(|&i| diag[i] == 0.0).collect();
        for &i in &dead {
            h[i * cols + i] = 1.0;
        }
        let u = inverse_factor(&mut h, cols, opts.damp)?;
        Ok(Hessian {
            cols,
            dead,
            diag,
            u,
        })
    }

    /// Columns of the matrices it applies to.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

fn shape<T>(what: &'static str, want: usize, got: usize) -> Result<T, Error> {
    Err(Error::Shape { what, want, got })
}

/// `cols` must be whole blocks of `ty`; returns the bytes of a row.
fn check_cols(ty: GgmlType, cols: usize) -> Result<usize, Error> {
    match ty.row_bytes(cols) {
        Some(b) if cols > 0 => Ok(b),
        _ => shape(
            "columns (a positive multiple of the block size)",
            ty.block_size(),
            cols,
        ),
    }
}

/// [`quantize_matrix`] with the Hessian already prepared; `w` has `hessian.cols()` columns.
pub fn quantize_with(
    ty: GgmlType,
    w: &[f32],
    hessian: &Hessian,
    importance: Option<&[f32]>,
    opts: &Options,
) -> Result<Vec<u8>, Error> {
    let codes = traits(ty).codes.ok_or(Error::Unsupported(ty))?;
    let cols = hessian.cols;
    let row_bytes = check_cols(ty, cols)?;
    if !w.len().is_multiple_of(cols) {
        return shape("weights (whole rows of `cols`)", cols, w.len() % cols);
    }
    let importance = match importance {
        Some(imp) if imp.len() != cols => {
            return shape("importance (one per column)", cols, imp.len())
        }
        Some(imp) => imp,
        None => &hessian.diag,
    };
    let rows = w.len() / cols;
    let mut w = w.to_vec();
    for row in w.chunks_exact_mut(cols) {
        for &i in &hessian.dead {
            row[i] = 0.0;
        }
    }
    let u = &hessian.u;
    let batch = opts.batch.max(1).div_ceil(ty.block_size()) * ty.block_size();
    let mut out = vec![0u8; rows * row_bytes];
    let mut err = vec![0f32; rows * batch];
    for i1 in (0..cols).step_by(batch) {
        let i2 = (i1 + batch).min(cols);
        w.par_chunks_mut(ROWS_PER_TASK * cols)
            .zip(out.par_chunks_mut(ROWS_PER_TASK * row_bytes))
            .zip(err.par_chunks_mut(ROWS_PER_TASK * batch))
            .for_each(|((w, out), err)| {
                let rows = w
                    .chunks_exact_mut(cols)
                    .zip(out.chunks_exact_mut(row_bytes))
                    .zip(err.chunks_exact_mut(batch));
                for ((w, out), err) in rows {
                    quantize_batch(ty, codes, w, out, err, (i1, i2), u, importance);
                }
            });
        if i2 < cols {
            // Every batch before the last is whole: the errors are `rows × batch`.
            trailing_update(&mut w, &err, u, cols, (i1, i2));
        }
    }
    Ok(out)
}

/// U with (H + λI)⁻¹ = UᵀU, λ from `damp` and raised tenfold on each failure.
fn inverse_factor(h: &mut [f32], n: usize, damp: f32) -> Result<Vec<f32>, Error> {
    let mean = (0..n).map(|i| f64::from(h[i * n + i])).sum::<f64>() / n as f64;
    let mut lambda = damp * mean as f32;
    let mut added = 0.0;
    for _ in 0..=DAMP_RETRIES {
        for i in 0..n {
            h[i * n + i] += lambda - added;
        }
        added = lambda;
        if let Ok(u) = inverse_cholesky_upper(h, n) {
            if u.iter().all(|v| v.is_finite()) {
                return Ok(u);
            }
        }
        lambda *= DAMP_GROWTH;
    }
    Err(Error::NotPositiveDefinite)
}

/// Columns `i1..i2` of one row: per block, ggml's encoder picks the scales, then each column is
/// rounded to the nearest code and its error fed to the batch's later columns; `err` gets the
/// scaled errors `(w − q)/U[j][j]` for the trailing update.
#[allow(clippy::too_many_arguments)]
fn quantize_batch(
    ty: GgmlType,
    codes: Codes,
    w: &mut [f32],
    out: &mut [u8],
    err: &mut [f32],
    (i1, i2): (usize, usize),
    u: &[f32],
    importance: &[f32],
) {
    let cols = w.len();
    let (bs, ts) = (ty.block_size(), ty.type_size());
    let encode = traits(ty).quantize;
    let max = f32::from(codes.max);
    let mut zero = [0f32; QK_K];
    let mut step = [0f32; QK_K];
    let mut code = [0u8; QK_K];
    for b0 in (i1..i2).step_by(bs) {
        let block = &mut out[b0 / bs * ts..][..ts];
        encode(&w[b0..b0 + bs], block, Some(&importance[b0..b0 + bs]));
        (codes.map)(block, &mut zero[..bs], &mut step[..bs]);
        for i in 0..bs {
            let j = b0 + i;
            let x = w[j];
            // A zero step decodes every code to `zero`: any code will do.
            let c = if step[i] != 0.0 {
                ((x - zero[i]) / step[i]).round().clamp(0.0, max)
            } else {
                0.0
            };
            code[i] = c as u8;
            let u_row = &u[j * cols..(j + 1) * cols];
            let e = (x - (zero[i] + step[i] * c)) / u_row[j];
            err[j - i1] = e;
            for (w, &u) in w[j + 1..i2].iter_mut().zip(&u_row[j + 1..i2]) {
                *w -= e * u;
            }
        }
        (codes.write)(&code[..bs], block);
    }
}

/// `W[:, i2..] −= E · U[i1..i2, i2..]` for the errors `E` (`rows × (i2 − i1)`) of a batch.
fn trailing_update(w: &mut [f32], err: &[f32], u: &[f32], cols: usize, (i1, i2): (usize, usize)) {
    let (n, k) = (cols - i2, i2 - i1);
    // U[i1..i2, i2..] transposed, one row per later column: the product's weight matrix.
    // Filled along U's rows, which are contiguous.
    let mut panel = vec![0u8; n * k * 4];
    for r in 0..k {
        for (c, &v) in u[(i1 + r) * cols + i2..(i1 + r + 1) * cols]
            .iter()
            .enumerate()
        {
            let at = 4 * (c * k + r);
            panel[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    let panel = Weights::new(GgmlType::F32, &panel, n, k).expect("an F32 panel");
    let rows = w.len() / cols;
    let mut delta = vec![0f32; GEMM_ROWS.min(rows) * n];
    for (w, e) in w
        .chunks_mut(GEMM_ROWS * cols)
        .zip(err.chunks(GEMM_ROWS * k))
    {
        let delta = &mut delta[..e.len() / k * n];
        matmul(&panel, e, delta);
        w.par_chunks_mut(cols)
            .zip(delta.par_chunks(n))
            .for_each(|(w, d)| {
                for (w, d) in w[i2..].iter_mut().zip(d) {
                    *w -= d;
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{dequantize_row, quantize_row};
    use llq_testsupport::Rng;

    /// Each type's codes describe its decoder: re-rounding ggml's own output through `map` and
    /// storing the codes with `write` decodes to the same values.
    #[test]
    fn codes_reproduce_the_decoder() {
        let mut rng = Rng::new(5);
        for ty in GgmlType::all().filter(|&ty| supports(ty)) {
            let codes = traits(ty).codes.unwrap();
            let (bs, ts) = (ty.block_size(), ty.type_size());
            let n = 4 * bs;
            let x = rng.normals(n, 0.02);
            let mut q = vec![0u8; ty.row_bytes(n).unwrap()];
            quantize_row(ty, &x, &mut q, None);
            let mut want = vec![0f32; n];
            dequantize_row(ty, &q, &mut want);
            let mut rewritten = q.clone();
            let (mut zero, mut step) = (vec![0f32; bs], vec![0f32; bs]);
            for (block, y) in rewritten.chunks_exact_mut(ts).zip(want.chunks_exact(bs)) {
                (codes.map)(block, &mut zero, &mut step);
                let c: Vec<u8> = (0..bs)
                    .map(|i| {
                        let c = ((y[i] - zero[i]) / step[i]).round();
                        assert!((0.0..=f32::from(codes.max)).contains(&c), "{ty}: code {c}");
                        c as u8
                    })
                    .collect();
                // Overwrite with other codes first: `write` must replace every one.
                (codes.write)(&vec![codes.max / 2; bs], block);
                (codes.write)(&c, block);
            }
            let mut got = vec![0f32; n];
            dequantize_row(ty, &rewritten, &mut got);
            assert_eq!(got, want, "{ty}");
        }
    }
}
