//! Weight matrix × activations, with the dot kernels of [`crate::dot`], parallel over output rows.

use crate::blocks::{dequantize_row, quantize_row};
use crate::dot::{self, DotTable, Gemm, TILE_ROWS, TILE_TOKENS};
use llq_types::GgmlType;
use rayon::prelude::*;

/// A row-major weight matrix of `rows` rows of `cols` elements of type `ty`.
pub struct Weights<'a> {
    pub ty: GgmlType,
    pub data: &'a [u8],
    pub rows: usize,
    pub cols: usize,
}

impl<'a> Weights<'a> {
    /// Checks data.len() == rows * ty.row_bytes(cols) and that the type has a dot kernel.
    pub fn new(
        ty: GgmlType,
        data: &'a [u8],
        rows: usize,
        cols: usize,
    ) -> Result<Weights<'a>, String> {
        if ty.activation().is_none() {
            return Err(format!("{ty} has no dot kernel"));
        }
        let row = ty
            .row_bytes(cols)
            .ok_or_else(|| format!("{ty}: {cols} columns is not a whole number of blocks"))?;
        let want = rows
            .checked_mul(row)
            .ok_or_else(|| format!("{ty}: {rows}x{cols} overflows"))?;
        if data.len() != want {
            return Err(format!(
                "{ty}: {rows}x{cols} needs {want} bytes, got {}",
                data.len()
            ));
        }
        Ok(Weights {
            ty,
            data,
            rows,
            cols,
        })
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.cols).expect("checked in new")
    }

    /// The bytes of row `r`.
    pub fn row_data(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }

    /// Dequantize row r into out (len cols) — used for embedding lookup.
    pub fn row(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.rows, "row {r} of {}", self.rows);
        dequantize_row(self.ty, self.row_data(r), out)
    }
}

/// Activations of `n_tok` tokens quantized to the activation type of `ty`, one row per token.
pub struct Activations {
    pub ty: GgmlType,
    pub data: Vec<u8>,
    pub row_bytes: usize,
}

impl Activations {
    /// Quantize `x` (`n_tok * cols` values) for weights of type `weight_ty`.
    pub fn quantize(weight_ty: GgmlType, x: &[f32], cols: usize) -> Activations {
        let ty = weight_ty
            .activation()
            .unwrap_or_else(|| panic!("{weight_ty} has no dot kernel"));
        let row_bytes = ty.row_bytes(cols).expect("cols is whole blocks");
        assert_eq!(x.len() % cols, 0, "activations are whole rows");
        let mut data = vec![0u8; x.len() / cols * row_bytes];
        if data.len() > row_bytes {
            data.par_chunks_mut(row_bytes)
                .zip(x.par_chunks(cols))
                .for_each(|(a, x)| quantize_row(ty, x, a, None));
        } else if !data.is_empty() {
            quantize_row(ty, x, &mut data, None);
        }
        Activations {
            ty,
            data,
            row_bytes,
        }
    }
}

/// Output rows per parallel task for one token: enough tasks for load balance, none too small.
fn rows_per_task(rows: usize) -> usize {
    (rows / (rayon::current_num_threads() * 8)).max(16)
}

/// Rows of weights kept hot while all tokens pass over them.
const ROW_TILE: usize = 8;
/// Tokens per pass over a row tile (their activations stay in L2).
const TOK_TILE: usize = 64;

/// `out[t * w.rows + r] = Σ_c W[r][c] · x[t * w.cols + c]` for every token `t`
/// (`x.len() = n_tok * cols`). Activations are quantized once per token to the weight type's
/// activation type ([`GgmlType::activation`]), then rows are dotted in parallel with rayon
/// (parallel over output rows; for many tokens tiled so that each chunk of weight rows is reused
/// across all tokens while hot in cache).
pub fn matmul(w: &Weights, x: &[f32], out: &mut [f32]) {
    assert!(w.cols > 0, "empty rows");
    assert_eq!(x.len() % w.cols, 0, "x is not whole rows of {}", w.cols);
    let n_tok = x.len() / w.cols;
    assert_eq!(out.len(), n_tok * w.rows, "out is n_tok x rows");
    let act = Activations::quantize(w.ty, x, w.cols);
    matmul_quantized(w, &act, out);
}

/// [`matmul`] with activations already quantized (reuse them across matrices of the same type
/// and width, e.g. the Q, K and V projections).
pub fn matmul_quantized(w: &Weights, act: &Activations, out: &mut [f32]) {
    matmul_quantized_with(dot::table(), w, act, out)
}

/// [`matmul_quantized`] with the kernels of a given table (benchmarks compare scalar and SIMD).
pub fn matmul_quantized_with(table: &DotTable, w: &Weights, act: &Activations, out: &mut [f32]) {
    let k = table
        .kernel(w.ty)
        .unwrap_or_else(|| panic!("no dot kernel for {}", w.ty));
    assert_eq!(k.act, act.ty, "activations quantized for another type");
    assert_eq!(
        Some(act.row_bytes),
        act.ty.row_bytes(w.cols),
        "activation width"
    );
    let n_tok = act.data.len() / act.row_bytes;
    assert_eq!(out.len(), n_tok * w.rows, "out is n_tok x rows");
    let cols = w.cols;
    if n_tok > 1 {
        if let Some(g) = k.gemm() {
            return tiled(&g, w, act, n_tok, out);
        }
    }
    // Packed once here, read by every weight row.
    let rows = k.pack_rows(cols, &act.data);
    if n_tok == 1 {
        let per_task = rows_per_task(w.rows);
        let rb = w.row_bytes();
        out.par_chunks_mut(per_task)
            .zip(w.data.par_chunks(per_task * rb))
            .for_each(|(o, wr)| k.matvec(cols, wr, &rows, 0, o));
        return;
    }
    // Many tokens: each task owns ROW_TILE rows and writes them for every token into a
    // row-major scratch (row r, token t at r * n_tok + t), transposed into `out` afterwards.
    let mut scratch = vec![0f32; w.rows * n_tok];
    scratch
        .par_chunks_mut(ROW_TILE * n_tok)
        .enumerate()
        .for_each(|(ci, o)| {
            let r0 = ci * ROW_TILE;
            let nr = o.len() / n_tok;
            for t0 in (0..n_tok).step_by(TOK_TILE) {
                let t1 = (t0 + TOK_TILE).min(n_tok);
                // Tokens in groups of 4 through the multi-token kernel (each weight block
                // unpacked once per group), the rest one by one; same results either way.
                let t4 = t0 + (t1 - t0) / 4 * 4;
                for i in 0..nr {
                    let wr = w.row_data(r0 + i);
                    let o = &mut o[i * n_tok..(i + 1) * n_tok];
                    for t in (t0..t4).step_by(4) {
                        o[t..t + 4].copy_from_slice(&k.dot4(cols, wr, &rows, t));
                    }
                    for (t, o) in o.iter_mut().enumerate().take(t1).skip(t4) {
                        *o = k.dot1(cols, wr, &rows, t);
                    }
                }
            }
        });
    transpose_into(&scratch, n_tok, w.rows, out);
}

/// Many tokens through a register-tiled kernel: each task repacks [`TILE_ROWS`] weight rows
/// into a buffer of its own, then runs every token over them, [`TILE_TOKENS`] at a time, and
/// writes its rows of each token's output in place.
fn tiled(g: &Gemm, w: &Weights, act: &Activations, n_tok: usize, out: &mut [f32]) {
    let cols = w.cols;
    let packer = g.act;
    let act_bytes = (packer.row_bytes)(cols);
    let mut acts = vec![0u8; n_tok * act_bytes];
    acts.par_chunks_mut(act_bytes)
        .zip(act.data.par_chunks(act.row_bytes))
        .for_each(|(o, a)| (packer.pack)(cols, a, o));
    let out = DisjointRows::new(out, w.rows);
    let tiles = w.rows.div_ceil(TILE_ROWS);
    (0..tiles).into_par_iter().for_each_init(
        || vec![0u8; (g.tile_bytes)(cols)],
        |tile, ti| {
            let r0 = ti * TILE_ROWS;
            let nr = TILE_ROWS.min(w.rows - r0);
            let rows: Vec<&[u8]> = (r0..r0 + nr).map(|r| w.row_data(r)).collect();
            (g.repack)(cols, &rows, tile);
            let mut res = [[0f32; TILE_ROWS]; TILE_TOKENS];
            for t0 in (0..n_tok).step_by(TILE_TOKENS) {
                let nt = TILE_TOKENS.min(n_tok - t0);
                let a = &acts[t0 * act_bytes..(t0 + nt) * act_bytes];
                (g.run)(cols, tile, a, &mut res[..nt]);
                for (t, res) in res[..nt].iter().enumerate() {
                    // SAFETY: this task is the only one with rows r0..r0 + nr.
                    unsafe { out.write(t0 + t, r0, &res[..nr]) };
                }
            }
        },
    );
}

/// A token-major output (`rows` values per token) that parallel tasks fill, each task owning a
/// range of rows of every token: no safe slice split expresses that, so writes go through a
/// pointer, bounds-checked here, disjoint by the caller's contract.
struct DisjointRows<'a> {
    ptr: *mut f32,
    len: usize,
    rows: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: tasks write disjoint elements (see `write`); the borrow of `out` outlives them.
unsafe impl Sync for DisjointRows<'_> {}

impl<'a> DisjointRows<'a> {
    fn new(out: &'a mut [f32], rows: usize) -> Self {
        DisjointRows {
            ptr: out.as_mut_ptr(),
            len: out.len(),
            rows,
            _out: std::marker::PhantomData,
        }
    }

    /// `out[t * rows + r0..][..v.len()] = v`.
    ///
    /// # Safety
    /// No other thread may write or read those elements meanwhile.
    unsafe fn write(&self, t: usize, r0: usize, v: &[f32]) {
        assert!(
            r0 + v.len() <= self.rows,
            "rows {r0}+{} of {}",
            v.len(),
            self.rows
        );
        let at = t * self.rows + r0;
        assert!(at + v.len() <= self.len, "token {t} out of range");
        // SAFETY: in bounds (checked above); exclusive by the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), self.ptr.add(at), v.len()) }
    }
}

/// `out[t * rows + r] = scratch[r * n_tok + t]`.
fn transpose_into(scratch: &[f32], n_tok: usize, rows: usize, out: &mut [f32]) {
    out.par_chunks_mut(rows).enumerate().for_each(|(t, o)| {
        for (r, o) in o.iter_mut().enumerate() {
            *o = scratch[r * n_tok + t];
        }
    });
}
