//! Numbers, not files: ggml block formats (encode, decode), float conversions and, later, dot
//! kernels. Every tensor type is one row of [`types::TYPES`] plus one [`codec::BlockCodec`] impl.

pub mod codec;
pub mod dot;
pub mod float;
pub mod kquant;
pub mod matmul;
pub mod quant;
mod rounding;

pub use codec::{dequantize_row, quantize_row, BlockCodec};
pub use rounding::unbiased::{quantize_row_mode, QuantMode};
