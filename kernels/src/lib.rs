//! Numbers, not files: the ggml tensor types' block formats (encode, decode), float
//! conversions, dot kernels and the matmul built on them. Every tensor type is one row of
//! [`llq_types::TYPES`] plus one block file in `blocks/`.

pub mod attention;
mod blocks;
pub mod dot;
pub mod float;
pub mod matmul;
mod rounding;
#[cfg(target_arch = "x86_64")]
mod simd;

pub use blocks::{dequantize_row, factor_offsets, quantize_row};
pub use rounding::unbiased::{quantize_row_mode, QuantMode};
