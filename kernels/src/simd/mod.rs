//! The SIMD kernel tables, one module per instruction set: `avx2` (AVX2 + FMA + F16C),
//! `avxvnni` (AVX-VNNI's 256-bit `vpdpbusd`, over the AVX2 table) and `avx512` (AVX-512
//! F/BW/VL + VNNI, over the AVX2 table), with the register-tiled many-token kernels of all
//! three in `gemm`. Each ISA module exports an [`crate::dot::Isa`] that `crate::dot` lists;
//! every kernel equals the scalar reference of its type's block file on the integer parts and
//! reads the block layouts through the same named offsets.
//!
//! The safety argument is the same everywhere: kernels are safe `#[target_feature]` functions,
//! entered through plain wrappers that only a table built after `is_x86_feature_detected!`
//! confirmed the features can reach.

pub(crate) mod avx2;
pub(crate) mod avx512;
pub(crate) mod avxvnni;
mod gemm;
