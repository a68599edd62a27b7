//! Dot products of one weight row against one row of activations, the inner loop of a matmul.
//!
//! As in ggml, activations are first quantized to the weight type's *activation type*
//! ([`GgmlType::activation`]): Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the
//! K-quants, and the weight's own format for F16, BF16 and F32. A kernel then works block by
//! block: integer sums of level products (exact), scaled by the blocks' float factors and summed
//! in f32.
//!
//! Every kernel has a scalar reference (each type's block file) and, on x86_64, an AVX2+FMA+F16C version; the
//! hottest ones (Q4_0, Q8_0, Q6_K) also an AVX-512+VNNI one. The table of function pointers
//! is chosen once, at first use ([`table`]): the best ISA the CPU reports, unless the environment
//! variable `LLQ_KERNELS=scalar` (or `=avx2`) forces the reference (or the AVX2 table). SIMD and
//! scalar results agree exactly on the integer parts; the float accumulation order differs
//! (SIMD keeps per-lane partial sums), so final results agree to rounding.

pub mod gemm;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use crate::blocks::traits;
use gemm::Gemm;
use llq_types::GgmlType;
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::OnceLock;

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
struct Packed {
    /// Like [`Kernel::dot`] over many weight rows, on a packed activation row.
    matvec: MatvecFn,
    dot4: Dot4Fn,
    packer: Packer,
}

/// One kernel: the activation type it expects and its dot product.
#[derive(Clone, Copy)]
pub struct Kernel {
    pub act: GgmlType,
    pub dot: DotFn,
    /// Packed-activation kernels, where the table has them for this type.
    packed: Option<Packed>,
    /// The register-tiled many-token kernel, where the table has one for this type.
    gemm: Option<Gemm>,
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
    fn new(act: GgmlType, dot: DotFn) -> Kernel {
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

/// A complete set of kernels for one ISA, indexed by weight type.
#[derive(Clone)]
pub struct DotTable {
    pub isa: &'static str,
    kernels: [Option<Kernel>; GgmlType::COUNT],
}

impl DotTable {
    /// The kernel for weights of type `ty`, or `None` when `ty` has no dot product (Q8_1, Q8_K:
    /// activation-only types).
    pub fn kernel(&self, ty: GgmlType) -> Option<Kernel> {
        self.kernels[ty as usize]
    }

    /// Replace the dot product of `ty` (used by the SIMD tables, which start from the scalar one).
    fn set(&mut self, ty: GgmlType, dot: DotFn) {
        let k = self.kernels[ty as usize]
            .as_mut()
            .expect("SIMD kernel for a type without a scalar one");
        k.dot = dot;
        // Packed kernels of the previous table would no longer match `dot` bit for bit.
        k.packed = None;
    }

    /// Install the register-tiled kernel of its weight type.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn set_gemm(&mut self, g: Gemm) {
        let k = self.kernels[g.weight as usize]
            .as_mut()
            .expect("SIMD kernel for a type without a scalar one");
        k.gemm = Some(g);
    }

    /// Install the packed-activation kernels of `ty` (after its [`DotTable::set`], if any).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn set_packed(&mut self, ty: GgmlType, matvec: MatvecFn, dot4: Dot4Fn, packer: Packer) {
        let k = self.kernels[ty as usize]
            .as_mut()
            .expect("SIMD kernel for a type without a scalar one");
        k.packed = Some(Packed {
            matvec,
            dot4,
            packer,
        });
    }
}

/// The scalar reference table (always available).
pub fn scalar_table() -> &'static DotTable {
    static T: OnceLock<DotTable> = OnceLock::new();
    T.get_or_init(|| {
        let mut kernels = [None; GgmlType::COUNT];
        for ty in GgmlType::all() {
            kernels[ty as usize] = traits(ty).dot.map(|dot| {
                let act = ty
                    .activation()
                    .expect("a type with a dot product has activations");
                Kernel::new(act, dot)
            });
        }
        DotTable {
            isa: "scalar",
            kernels,
        }
    })
}

/// The AVX2+FMA+F16C table, when this CPU has those features.
pub fn avx2_table() -> Option<&'static DotTable> {
    #[cfg(target_arch = "x86_64")]
    {
        static T: OnceLock<Option<DotTable>> = OnceLock::new();
        T.get_or_init(avx2::table).as_ref()
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// The AVX-512 (F/BW/VL) + VNNI table, when this CPU has those features (and AVX2's). Types
/// without an AVX-512 kernel keep their AVX2 one.
pub fn avx512_table() -> Option<&'static DotTable> {
    #[cfg(target_arch = "x86_64")]
    {
        static T: OnceLock<Option<DotTable>> = OnceLock::new();
        T.get_or_init(avx512::table).as_ref()
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// Every table this CPU supports, from the scalar reference to the best (tests compare them all).
pub fn tables() -> Vec<&'static DotTable> {
    let mut v = vec![scalar_table()];
    v.extend(avx2_table());
    v.extend(avx512_table());
    v
}

/// The best table this CPU supports, ignoring `LLQ_KERNELS`: AVX-512+VNNI, else AVX2, else the
/// scalar reference.
pub fn best_table() -> &'static DotTable {
    avx512_table()
        .or_else(avx2_table)
        .unwrap_or_else(scalar_table)
}

/// The table in use: [`best_table`], unless `LLQ_KERNELS` was set when it was first asked for:
/// `scalar` forces the reference, `avx2` the AVX2 table (the scalar one if the CPU lacks AVX2).
/// Chosen once per process.
pub fn table() -> &'static DotTable {
    static T: OnceLock<&'static DotTable> = OnceLock::new();
    T.get_or_init(|| match std::env::var("LLQ_KERNELS") {
        Ok(v) if v.eq_ignore_ascii_case("scalar") => scalar_table(),
        Ok(v) if v.eq_ignore_ascii_case("avx2") => avx2_table().unwrap_or_else(scalar_table),
        _ => best_table(),
    })
}

/// The ISA of the table in use: `"avx512vnni"`, `"avx2"` or `"scalar"`.
pub fn active_isa() -> &'static str {
    table().isa
}

/// The active kernel for weights of type `ty`.
pub fn kernel(ty: GgmlType) -> Option<Kernel> {
    table().kernel(ty)
}

/// One dot product with the active table: `w` holds `n` elements of `ty`, `a` `n` elements of
/// `ty.activation()`. Panics if `ty` has no kernel or the lengths disagree.
pub fn vec_dot(ty: GgmlType, n: usize, w: &[u8], a: &[u8]) -> f32 {
    let k = kernel(ty).unwrap_or_else(|| panic!("no dot kernel for {ty}"));
    (k.dot)(n, w, a)
}

/// Check a kernel's arguments: `n` is whole blocks, `w` exactly that many elements of `wt` and
/// `a` of its activation type, which is returned. Always inlined: with `wt` a constant, so is
/// the activation type, and the kernels' block loops keep constant strides.
#[inline(always)]
pub(crate) fn check(n: usize, w: &[u8], a: &[u8], wt: GgmlType) -> GgmlType {
    let at = wt.activation().expect("a weight type");
    assert_eq!(wt.row_bytes(n), Some(w.len()), "{wt} weight row of {n}");
    assert_eq!(at.row_bytes(n), Some(a.len()), "{at} activation row of {n}");
    at
}
