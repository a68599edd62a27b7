//! The ggml K-quants (Q2_K ... Q6_K, and Q8_K for activations): super-blocks of 256 elements
//! split into sub-blocks of 16 or 32, each with a small integer scale (and min) that is itself
//! quantized against one or two fp16 super-block scales. Each type has its own file; the scale
//! searches they share live in [`crate::rounding::kquant`].
//!
//! Bit-exactness with ggml is the contract: without importance weights `quantize_row` matches
//! `quantize_row_qX_K_ref` (what llama-quantize runs without an imatrix), with them it matches
//! `quantize_row_qX_K_impl`. Every sum is accumulated in f32 in ggml's order, Rust never fuses a
//! multiply-add, and the final levels are recomputed from the scales as stored (after the fp16
//! and 6-bit rounding), never from the unrounded search results.

mod q2_k;
mod q3_k;
mod q4_k;
mod q5_k;
mod q6_k;
mod q8_k;
mod sub32;

pub use q2_k::Q2_K;
pub use q3_k::Q3_K;
pub use q4_k::Q4_K;
pub use q5_k::Q5_K;
pub use q6_k::Q6_K;
pub use q8_k::Q8_K;

use crate::codec::dequantize_blocks;
use crate::float::{f16_bits_to_f32, f32_to_f16_bits};
use llq_types::{GgmlType, QK_K};

/// One super-block of input.
type Block = [f32; QK_K];
/// Quantized levels of one super-block, unsigned (any zero point already added).
type Levels = [u8; QK_K];

/// Encode a row super-block by super-block. `encode` gets the block, its slice of the per-column
/// importance (if any) and the output bytes.
fn quantize_blocks(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
    encode: impl Fn(&Block, Option<&Block>, &mut [u8]),
) {
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    let blocks = src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(ty.type_size()));
    match importance {
        None => {
            for (x, out) in blocks {
                encode(x.try_into().unwrap(), None, out);
            }
        }
        Some(w) => {
            assert_eq!(w.len(), src.len(), "{ty} importance length");
            for ((x, out), w) in blocks.zip(w.chunks_exact(QK_K)) {
                encode(x.try_into().unwrap(), Some(w.try_into().unwrap()), out);
            }
        }
    }
}

fn read_f16(b: &[u8], at: usize) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Store `x` as fp16 at `at` and return the value as stored, which is what later steps must use.
fn write_f16(b: &mut [u8], at: usize, x: f32) -> f32 {
    let bits = f32_to_f16_bits(x);
    b[at..at + 2].copy_from_slice(&bits.to_le_bytes());
    f16_bits_to_f32(bits)
}

/// Pack 2-bit levels as Q2_K and Q3_K store them: in each half of 128 elements, byte `l` holds
/// elements `l`, `l+32`, `l+64`, `l+96` from the low bits up. Levels are below 4 by construction.
fn pack_2bit(levels: &Levels, qs: &mut [u8]) {
    for (half, q) in levels.chunks_exact(128).zip(qs.chunks_exact_mut(32)) {
        for (l, byte) in q.iter_mut().enumerate() {
            *byte = half[l] | (half[l + 32] << 2) | (half[l + 64] << 4) | (half[l + 96] << 6);
        }
    }
}
