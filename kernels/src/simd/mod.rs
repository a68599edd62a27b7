//! The SIMD kernel tables, one module per instruction set: on x86_64 `avx2` (AVX2 + FMA + F16C),
//! `avxvnni` (AVX-VNNI's 256-bit `vpdpbusd`, over the AVX2 table) and `avx512` (AVX-512
//! F/BW/VL + VNNI, over the AVX2 table), with the register-tiled many-token kernels of all three
//! in `gemm`; on aarch64 `neon` (the `neon` and `neondot` tables: NEON, and NEON + the
//! dot-product extension). Each ISA module exports an [`crate::dot::Isa`] that `crate::dot`
//! lists; every kernel equals the scalar reference of its type's block file on the integer parts
//! and reads the block layouts through the same named offsets.
//!
//! The safety argument is the same everywhere: kernels are safe `#[target_feature]` functions,
//! entered through plain wrappers that only a table built after `is_x86_feature_detected!` (or
//! `is_aarch64_feature_detected!`) confirmed the features can reach.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avxvnni;
#[cfg(target_arch = "x86_64")]
mod gemm;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
