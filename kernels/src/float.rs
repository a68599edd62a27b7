//! Lossless-format conversions between f32 and the 16-bit float types.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// Decode little-endian f16 bytes into `dst` (`src.len() == 2 * dst.len()`).
pub fn f16_to_f32(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 2, "f16 byte length");
    for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = f16::from_le_bytes([c[0], c[1]]).to_f32();
    }
}

/// Decode little-endian bf16 bytes into `dst`: exact, a bf16 is the top half of an f32.
pub fn bf16_to_f32(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 2, "bf16 byte length");
    for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = bf16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

/// Decode little-endian f32 bytes into `dst`.
pub fn f32_from_le(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 4, "f32 byte length");
    for (d, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// Encode f32 as little-endian f16, rounding to nearest even (IEEE, as numpy and ggml do).
pub fn f32_to_f16(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 2, "f16 byte length");
    let mut buf = [f16::ZERO; 64];
    for (s, d) in src.chunks(64).zip(dst.chunks_mut(128)) {
        let buf = &mut buf[..s.len()];
        buf.convert_from_f32_slice(s);
        for (h, o) in buf.iter().zip(d.chunks_exact_mut(2)) {
            o.copy_from_slice(&h.to_le_bytes());
        }
    }
}

/// Encode f32 as little-endian bf16, rounding to nearest even (as torch and gguf-py do).
pub fn f32_to_bf16(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 2, "bf16 byte length");
    for (s, o) in src.iter().zip(dst.chunks_exact_mut(2)) {
        o.copy_from_slice(&bf16::from_f32(*s).to_le_bytes());
    }
}

/// Encode f32 as little-endian f32 bytes.
pub fn f32_to_le(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 4, "f32 byte length");
    for (s, o) in src.iter().zip(dst.chunks_exact_mut(4)) {
        o.copy_from_slice(&s.to_le_bytes());
    }
}

/// One f16 value from its bits, for block scales.
#[inline]
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// One bf16 value from its bits: exact, a bf16 is the top half of an f32.
#[inline]
pub fn bf16_bits_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// The f16 bits nearest to `x` (round to nearest even), for block scales.
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_round_trip_is_exact() {
        let vals = [0.0f32, -1.5, 3.140625, 1e-30, -65504.0];
        let mut bytes = vec![0u8; vals.len() * 2];
        f32_to_bf16(&vals, &mut bytes);
        let mut back = vec![0f32; vals.len()];
        bf16_to_f32(&bytes, &mut back);
        let mut again = vec![0u8; vals.len() * 2];
        f32_to_bf16(&back, &mut again);
        assert_eq!(bytes, again);
        assert_eq!(back[1], -1.5);
    }

    #[test]
    fn f16_rounds_to_nearest_even() {
        // 1 + 2^-11 lies exactly between two f16 values; the even one is 1.0.
        let x = [1.0f32 + f32::powi(2.0, -11), 65504.0, 1e-7];
        let mut bytes = vec![0u8; 6];
        f32_to_f16(&x, &mut bytes);
        let mut back = [0f32; 3];
        f16_to_f32(&bytes, &mut back);
        assert_eq!(back[0], 1.0);
        assert_eq!(back[1], 65504.0);
        assert!(
            back[2] > 0.0 && back[2] < 2e-7,
            "subnormal kept: {}",
            back[2]
        );
    }
}
