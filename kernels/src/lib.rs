//! Numbers, not files: the ggml tensor types' block formats (encode, decode), the dot kernels
//! and the matmul built on them, attention's f32 loops, and float conversions. No file I/O.
//!
//! - Rows of any type: [`quantize_row`], [`dequantize_row`], [`quantize_row_mode`] with its
//!   [`QuantMode`], and [`factor_offsets`] (where a block's fp16 scale factors are).
//! - [`matmul`]: weights × activations, with [`dot`] (the kernel tables, one per ISA, and the
//!   one in use) underneath.
//! - [`attention`]: the query·key dot products, softmax and weighted sums of values.
//! - [`float`]: f32 ⇄ f16/bf16 conversions.
//! - [`gptq`]: error-compensated quantization of a matrix into ggml blocks, on the dense
//!   algebra of [`linalg`].
//!
//! Inside, each tensor type is one row of [`llq_types::TYPES`] plus one file in `blocks/`
//! (layout, encoder, decoder, scalar dot product), registered by an exhaustive match on
//! [`llq_types::GgmlType`]; `rounding/` holds the rounding searches the encoders share and
//! `simd/` the kernel tables of each instruction set.

pub mod attention;
mod blocks;
pub mod dot;
pub mod float;
pub mod gptq;
pub mod linalg;
pub mod matmul;
mod rounding;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod simd;

pub use blocks::{dequantize_row, factor_offsets, quantize_row};
pub use rounding::unbiased::{quantize_row_mode, QuantMode};
