//! Dot products of one weight row against one row of activations, the inner loop of a matmul.
//!
//! As in ggml, activations are first quantized to the weight type's *activation type*
//! ([`GgmlType::activation`]): Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the
//! K-quants, and the weight's own format for F16, BF16 and F32. A kernel then works block by
//! block: integer sums of level products (exact), scaled by the blocks' float factors and summed
//! in f32.
//!
//! Every kernel has a scalar reference (in its type's block file) and, on x86_64, an
//! AVX2+FMA+F16C version; the hottest ones (Q4_0, Q8_0, Q6_K) also an AVX-512+VNNI one, and the
//! many-token register tiles an AVX2, an AVX-VNNI and an AVX-512 VNNI version. On aarch64 the
//! quantized types have NEON kernels, and NEON + dotprod (`sdot`) ones where the CPU has the
//! extension (the ISA tables are under `simd/`). The table of function pointers is chosen once,
//! at first use ([`table`]): the best ISA the CPU reports, unless the environment variable
//! `LLQ_KERNELS` names a table (`scalar`, `avx2`, `avxvnni`, `avx512vnni`, `neon`, `neondot`):
//! then the best up to that one. SIMD and scalar results agree exactly on the integer parts; on
//! x86 the float accumulation order differs (SIMD keeps per-lane partial sums), so final
//! results agree to rounding, while the NEON quantized kernels keep the reference's order and
//! equal it bit for bit.

mod kernel;

pub use kernel::{
    Dot4Fn, DotFn, Gemm, Kernel, MatvecFn, PackedRows, Packer, TileFn, TILE_ROWS, TILE_TOKENS,
};

use crate::blocks::traits;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::simd;
use kernel::Packed;
use llq_types::GgmlType;
use std::sync::OnceLock;

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
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    pub(crate) fn set(&mut self, ty: GgmlType, dot: DotFn) {
        let k = self.kernels[ty as usize]
            .as_mut()
            .expect("SIMD kernel for a type without a scalar one");
        k.dot = dot;
        // Packed kernels of the previous table would no longer match `dot` bit for bit.
        k.packed = None;
    }

    /// Install the register-tiled kernel of its weight type.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn set_gemm(&mut self, g: Gemm) {
        let k = self.kernels[g.weight as usize]
            .as_mut()
            .expect("SIMD kernel for a type without a scalar one");
        k.gemm = Some(g);
    }

    /// Install the packed-activation kernels of `ty` (after its [`DotTable::set`], if any).
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    pub(crate) fn set_packed(
        &mut self,
        ty: GgmlType,
        matvec: MatvecFn,
        dot4: Dot4Fn,
        packer: Packer,
    ) {
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

/// An ISA's table: its name, and how to build it (`None` when this CPU lacks the features).
pub(crate) struct Isa {
    pub name: &'static str,
    pub build: fn() -> Option<DotTable>,
}

/// The SIMD tables of this build, weakest first; each starts from a copy of a weaker one and
/// replaces the kernels it has. A new ISA is a module under `simd/` and one line here.
const SIMD: &[Isa] = &[
    #[cfg(target_arch = "x86_64")]
    simd::avx2::ISA,
    #[cfg(target_arch = "x86_64")]
    simd::avxvnni::ISA,
    #[cfg(target_arch = "x86_64")]
    simd::avx512::ISA,
    #[cfg(target_arch = "aarch64")]
    simd::neon::NEON,
    #[cfg(target_arch = "aarch64")]
    simd::neon::NEONDOT,
];

/// The scalar reference table (always available): every type's dot product from its block
/// file.
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

/// The SIMD tables this CPU supports, weakest first.
fn simd_tables() -> &'static [DotTable] {
    static T: OnceLock<Vec<DotTable>> = OnceLock::new();
    T.get_or_init(|| SIMD.iter().filter_map(|isa| (isa.build)()).collect())
}

/// Every table this CPU supports, from the scalar reference to the best (tests compare them all).
pub fn tables() -> Vec<&'static DotTable> {
    std::iter::once(scalar_table())
        .chain(simd_tables())
        .collect()
}

/// The table of ISA `name` (`"scalar"`, `"avx2"`, `"avxvnni"`, `"avx512vnni"`, `"neon"`,
/// `"neondot"`), if this CPU supports it.
pub fn table_named(name: &str) -> Option<&'static DotTable> {
    tables().into_iter().find(|t| t.isa == name)
}

/// The best table this CPU supports, ignoring `LLQ_KERNELS`: AVX-512+VNNI, else AVX-VNNI, else
/// AVX2 (on aarch64: NEON + dotprod, else NEON), else the scalar reference.
pub fn best_table() -> &'static DotTable {
    simd_tables().last().unwrap_or_else(scalar_table)
}

/// Where ISA `name` stands among this build's tables, weakest (the scalar reference) first.
fn rank(name: &str) -> Option<usize> {
    std::iter::once("scalar")
        .chain(SIMD.iter().map(|isa| isa.name))
        .position(|n| n.eq_ignore_ascii_case(name))
}

/// The table in use: [`best_table`], unless `LLQ_KERNELS` names a table when it is first asked
/// for: then the best table up to that one (`scalar` forces the reference, `avx2` the AVX2
/// table, or the reference if the CPU lacks AVX2; `neon` likewise on aarch64). Chosen once per
/// process.
pub fn table() -> &'static DotTable {
    static T: OnceLock<&'static DotTable> = OnceLock::new();
    T.get_or_init(|| {
        let cap = std::env::var("LLQ_KERNELS").ok().and_then(|v| rank(&v));
        match cap {
            Some(cap) => tables()
                .into_iter()
                .rfind(|t| rank(t.isa) <= Some(cap))
                .expect("the scalar table is always there"),
            None => best_table(),
        }
    })
}

/// The ISA of the table in use: `"avx512vnni"`, `"avxvnni"`, `"avx2"`, `"neondot"`, `"neon"` or
/// `"scalar"`.
pub fn active_isa() -> &'static str {
    table().isa
}

/// The active kernel for weights of type `ty`.
pub fn kernel(ty: GgmlType) -> Option<Kernel> {
    table().kernel(ty)
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
