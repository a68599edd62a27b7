//! The AVX-VNNI table (x86_64): the AVX2 table with the 256-bit `vpdpbusd` register tiles of
//! `super::gemm` for the quantized types (Intel 12th generation and later, AMD Zen 5: CPUs
//! that may lack AVX-512). Its own table rather than a choice inside the AVX2 one, so that every
//! kernel of a table runs on exactly the features the table checked, and both variants can be
//! forced and tested on one CPU (`LLQ_KERNELS=avx2` on a CPU with AVX-VNNI).
//!
//! Same safety argument as [`super::avx2`]: the tiles are entered through plain wrappers that
//! only this table installs, after `is_x86_feature_detected!` confirmed AVX-VNNI besides the
//! AVX2 table's features.

use super::{avx2, gemm};
use crate::dot::{DotTable, Isa};

pub(crate) const ISA: Isa = Isa {
    name: "avxvnni",
    build: table,
};

/// The AVX2 table with the AVX-VNNI tiles, or `None` when the CPU lacks AVX-VNNI (or any of
/// AVX2, FMA, F16C).
fn table() -> Option<DotTable> {
    if !is_x86_feature_detected!("avxvnni") {
        return None;
    }
    // Checks AVX2, FMA and F16C.
    let mut t = (avx2::ISA.build)()?;
    t.isa = ISA.name;
    for &g in gemm::AVXVNNI {
        t.set_gemm(g);
    }
    Some(t)
}
