//! One kernel of a [`super::DotTable`]: a weight type's dot product and, where an ISA table has
//! them, its kernels for many activation rows at once (packed activations, register tiles).

use llq_types::GgmlType;
use rayon::prelude::*;
use std::borrow::Cow;

/// `vec_dot(n, weight_row_bytes, act_row_bytes)`: the dot product of one row of `n` elements.
/// Panics if the byte lengths are not those of `n` elements of the weight and activation types.
pub type DotFn = fn(usize, &[u8], &[u8]) -> f32;

/// `dot4(n, weight_row_bytes, [act_row_bytes; 4])`: one weight row against four activation
/// rows, each weight block unpacked once. Bit-identical to four calls of the same table's
/// [`DotFn`] (same integer block sums, same float accumulation order per row). The activation
/// rows are in the kernel's [`Packer`] layout when it has one.
pub type Dot4Fn = fn(usize, &[u8], [&[u8]; 4]) -> [f32; 4];

/// `matvec(n, weight_rows, act_row, out)`: `out[r]` = row `r` of the weight rows (whole rows of
/// `n` elements, `out.len()` of them) · the activation row; each bit-identical to the table's
/// [`DotFn`] on that row. Lengths are checked once per call rather than once per row.
pub type MatvecFn = fn(usize, &[u8], &[u8], &mut [f32]);

/// Rewrites activation rows, once per matmul, into the layout a multi-token kernel reads
/// (e.g. with per-block sums it would otherwise recompute for every weight row).
#[derive(Clone, Copy)]
pub struct Packer {
    /// Bytes of a packed row of `n` elements.
    pub row_bytes: fn(usize) -> usize,
    /// `pack(n, act_row, packed_row)`.
    pub pack: fn(usize, &[u8], &mut [u8]),
}

/// Kernels over activations packed once per matmul: one and four rows at a time.
#[derive(Clone, Copy)]
pub(super) struct Packed {
    /// Like [`Kernel::dot`] over many weight rows, on a packed activation row.
    pub(super) matvec: MatvecFn,
    pub(super) dot4: Dot4Fn,
    pub(super) packer: Packer,
}

/// One kernel: the activation type it expects and its dot product.
#[derive(Clone, Copy)]
pub struct Kernel {
    pub act: GgmlType,
    pub dot: DotFn,
    /// Packed-activation kernels, where the table has them for this type.
    pub(super) packed: Option<Packed>,
    /// The register-tiled many-token kernel, where the table has one for this type.
    pub(super) gemm: Option<Gemm>,
}

/// Activation rows as [`Kernel::dot1`] and [`Kernel::dot4`] read them: the rows themselves, or a
/// copy in the kernel's packed layout.
pub struct PackedRows<'a> {
    data: Cow<'a, [u8]>,
    row_bytes: usize,
}

impl PackedRows<'_> {
    fn row(&self, t: usize) -> &[u8] {
        &self.data[t * self.row_bytes..(t + 1) * self.row_bytes]
    }
}

impl Kernel {
    pub(super) fn new(act: GgmlType, dot: DotFn) -> Kernel {
        Kernel {
            act,
            dot,
            packed: None,
            gemm: None,
        }
    }

    /// `act` (whole rows of `n` elements of [`Kernel::act`]) in the form [`Kernel::dot1`] and
    /// [`Kernel::dot4`] read: packed in parallel when the table has packed kernels.
    pub fn pack_rows<'a>(&self, n: usize, act: &'a [u8]) -> PackedRows<'a> {
        let act_bytes = self.act.row_bytes(n).expect("n is whole blocks");
        assert_eq!(act.len() % act_bytes, 0, "activations are whole rows");
        let Some(p) = self.packed.map(|k| k.packer) else {
            return PackedRows {
                data: Cow::Borrowed(act),
                row_bytes: act_bytes,
            };
        };
        let row_bytes = (p.row_bytes)(n);
        let mut data = vec![0u8; act.len() / act_bytes * row_bytes];
        data.par_chunks_mut(row_bytes)
            .zip(act.par_chunks(act_bytes))
            .for_each(|(out, a)| (p.pack)(n, a, out));
        PackedRows {
            data: Cow::Owned(data),
            row_bytes,
        }
    }

    /// One weight row `w` against row `t` of `rows`: bit-identical to [`Kernel::dot`] on the
    /// unpacked row.
    #[inline]
    pub fn dot1(&self, n: usize, w: &[u8], rows: &PackedRows, t: usize) -> f32 {
        let mut out = [0f32];
        self.matvec(n, w, rows, t, &mut out);
        out[0]
    }

    /// Weight rows `w` (`out.len()` whole rows of `n` elements) against row `t` of `rows`:
    /// each output bit-identical to [`Kernel::dot`] on the unpacked row.
    pub fn matvec(&self, n: usize, w: &[u8], rows: &PackedRows, t: usize, out: &mut [f32]) {
        let a = rows.row(t);
        match self.packed {
            Some(k) => (k.matvec)(n, w, a, out),
            None if out.is_empty() => {}
            None => {
                let row = w.len() / out.len();
                for (o, w) in out.iter_mut().zip(w.chunks_exact(row)) {
                    *o = (self.dot)(n, w, a);
                }
            }
        }
    }

    /// One weight row `w` against rows `t..t + 4` of `rows`, each weight block unpacked once
    /// where the table has a multi-token kernel (else four calls of [`Kernel::dot`]). Either
    /// way bit-identical to `[dot(n, w, a[t]), .., dot(n, w, a[t + 3])]` on the unpacked rows.
    #[inline]
    pub fn dot4(&self, n: usize, w: &[u8], rows: &PackedRows, t: usize) -> [f32; 4] {
        let a = [
            rows.row(t),
            rows.row(t + 1),
            rows.row(t + 2),
            rows.row(t + 3),
        ];
        match self.packed {
            Some(k) => (k.dot4)(n, w, a),
            None => a.map(|a| (self.dot)(n, w, a)),
        }
    }

    /// The register-tiled kernel for many tokens, where the table has one for this type
    /// (bit-identical to the scalar reference's dot products).
    pub fn gemm(&self) -> Option<Gemm> {
        self.gemm
    }

    /// Whether the table has packed-activation kernels for this type (rather than 1×1 calls
    /// on the rows as quantized).
    pub fn has_packed(&self) -> bool {
        self.packed.is_some()
    }
}

/// Weight rows per repacked tile: one per i32 lane of a 512-bit vector.
pub const TILE_ROWS: usize = 16;

/// Tokens per kernel call at most (the accumulators stay in registers).
pub const TILE_TOKENS: usize = 8;

/// `run(n, tile, acts, out)` of a [`Gemm`].
pub type TileFn = fn(usize, &[u8], &[u8], &mut [[f32; TILE_ROWS]]);

/// The tiled kernel of one weight type: its tile and activation layouts and how to run a tile.
#[derive(Clone, Copy)]
pub struct Gemm {
    /// The weight type it is for.
    pub weight: GgmlType,
    /// Bytes of a tile of [`TILE_ROWS`] rows of `n` elements.
    pub tile_bytes: fn(usize) -> usize,
    /// `repack(n, rows, tile)`: up to [`TILE_ROWS`] weight rows into a tile; missing rows
    /// become zeros (scales 0, levels 0).
    pub repack: fn(usize, &[&[u8]], &mut [u8]),
    /// The activation rows (of the weight type's activation type) as `run` reads them.
    pub act: Packer,
    /// `run(n, tile, acts, out)`: `out[t][r]` = row `r` of the tile · packed activation row
    /// `t` of `acts` (`out.len()` ≤ [`TILE_TOKENS`] rows, contiguous in `acts`).
    pub run: TileFn,
}
