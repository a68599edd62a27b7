//! One trait for every tensor type's encode/decode, and the run-time dispatch over [`GgmlType`].

use crate::float;
use llq_types::GgmlType;

/// Encode and decode rows of one tensor type. Row lengths are whole blocks; `dst` is sized by
/// [`GgmlType::row_bytes`]. `importance` (per-column weights from an imatrix) may steer the
/// rounding of types that use it; others ignore it.
pub trait BlockCodec {
    const TYPE: GgmlType;
    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>);
    fn dequantize_row(src: &[u8], dst: &mut [f32]);
}

type QuantizeFn = fn(&[f32], &mut [u8], Option<&[f32]>);
type DequantizeFn = fn(&[u8], &mut [f32]);

/// A type's entry in the dispatch table.
#[derive(Clone, Copy)]
pub struct Codec {
    pub ty: GgmlType,
    pub quantize: QuantizeFn,
    pub dequantize: DequantizeFn,
}

const fn entry<C: BlockCodec>() -> Codec {
    Codec {
        ty: C::TYPE,
        quantize: C::quantize_row,
        dequantize: C::dequantize_row,
    }
}

pub struct F32;
pub struct F16;
pub struct Bf16;

impl BlockCodec for F32 {
    const TYPE: GgmlType = GgmlType::F32;
    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_le(src, dst)
    }
    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::f32_from_le(src, dst)
    }
}

impl BlockCodec for F16 {
    const TYPE: GgmlType = GgmlType::F16;
    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_f16(src, dst)
    }
    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::f16_to_f32(src, dst)
    }
}

impl BlockCodec for Bf16 {
    const TYPE: GgmlType = GgmlType::BF16;
    fn quantize_row(src: &[f32], dst: &mut [u8], _: Option<&[f32]>) {
        float::f32_to_bf16(src, dst)
    }
    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        float::bf16_to_f32(src, dst)
    }
}

/// Decode a row block by block: `decode` turns one stored block of `ty` into its `N` values.
pub(crate) fn dequantize_blocks<const N: usize>(
    ty: GgmlType,
    src: &[u8],
    dst: &mut [f32],
    decode: impl Fn(&[u8], &mut [f32; N]),
) {
    debug_assert_eq!(ty.block_size(), N);
    assert_eq!(ty.row_bytes(dst.len()), Some(src.len()), "{ty} row size");
    for (block, out) in src
        .chunks_exact(ty.type_size())
        .zip(dst.chunks_exact_mut(N))
    {
        decode(block, out.try_into().expect("chunks of N"));
    }
}

/// Every type that can be written and read. Adding a type: one impl plus one row here.
const CODECS: &[Codec] = &[
    entry::<F32>(),
    entry::<F16>(),
    entry::<Bf16>(),
    entry::<crate::quant::Q8_0>(),
    entry::<crate::quant::Q8_1>(),
    entry::<crate::quant::Q4_0>(),
    entry::<crate::quant::Q4_1>(),
    entry::<crate::quant::Q5_0>(),
    entry::<crate::quant::Q5_1>(),
    entry::<crate::kquant::Q2_K>(),
    entry::<crate::kquant::Q3_K>(),
    entry::<crate::kquant::Q4_K>(),
    entry::<crate::kquant::Q5_K>(),
    entry::<crate::kquant::Q6_K>(),
    entry::<crate::kquant::Q8_K>(),
];

/// The codec of `ty`, or `None` when llq cannot encode that type.
pub fn codec(ty: GgmlType) -> Option<&'static Codec> {
    CODECS.iter().find(|c| c.ty == ty)
}

/// Encode one row of `ty`. Panics if `ty` has no codec or the lengths disagree: callers check
/// with [`codec`] and [`GgmlType::row_bytes`] first.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
    let c = codec(ty).unwrap_or_else(|| panic!("no codec for {ty}"));
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    (c.quantize)(src, dst, importance)
}

/// Decode one row of `ty`; same contract as [`quantize_row`].
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    let c = codec(ty).unwrap_or_else(|| panic!("no codec for {ty}"));
    assert_eq!(ty.row_bytes(dst.len()), Some(src.len()), "{ty} row size");
    (c.dequantize)(src, dst)
}

/// How importance weights (an imatrix) steer the rounding. Without importance both modes give
/// ggml's reference bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuantMode {
    /// ggml's weighted searches, byte for byte (what llama-quantize writes).
    #[default]
    Ggml,
    /// Not ggml: the same block layouts, but each block's reconstruction is made free of gain
    /// error. ggml's least-squares scale projects a block onto its levels, so the decoded block
    /// is systematically smaller than the original (in the weighted norm); through q·k,
    /// gate·up and the residual stream these shrinks add up instead of averaging out. Here the
    /// levels are chosen as ggml chooses them (Q4_0 and Q5_0 then refine them by coordinate
    /// descent on the same weighted fit), and then every block's fp16 factors (d, and dmin or m
    /// for the affine types) are multiplied by `g = Σ w x² / Σ w x x̂`, so that
    /// `Σ w x x̂ = Σ w x²`: the error has no component along the block itself. `w` are the
    /// weights of ggml's legacy-type search, `importance · sqrt(σ² + x²)` with σ² the row's mean
    /// square. Types that ignore importance (Q8_0, floats) are unchanged.
    Unbiased,
}

/// Byte offsets of the fp16 factors that scale a whole block linearly (d, and dmin or m), for
/// the types whose rounding uses importance; empty for the others.
fn gain_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    }
}

/// Encode one row of `ty` with `importance` used as `mode` says; same contract as
/// [`quantize_row`], which this is for [`QuantMode::Ggml`] or without importance.
pub fn quantize_row_mode(
    ty: GgmlType,
    src: &[f32],
    dst: &mut [u8],
    importance: Option<&[f32]>,
    mode: QuantMode,
) {
    let (QuantMode::Unbiased, Some(importance)) = (mode, importance) else {
        return quantize_row(ty, src, dst, importance);
    };
    if gain_fields(ty).is_empty() {
        return quantize_row(ty, src, dst, Some(importance));
    }
    assert_eq!(ty.row_bytes(src.len()), Some(dst.len()), "{ty} row size");
    assert_eq!(importance.len(), src.len(), "{ty} importance length");
    match ty {
        GgmlType::Q4_0 => crate::quant::Q4_0::quantize_row_refined(src, dst, importance),
        GgmlType::Q5_0 => crate::quant::Q5_0::quantize_row_refined(src, dst, importance),
        _ => quantize_row(ty, src, dst, Some(importance)),
    }
    remove_gain(ty, src, dst, importance);
}

/// Rescale each block's fp16 factors of an encoded row by `Σ w x² / Σ w x x̂` (see
/// [`QuantMode::Unbiased`]). Sums in f64; a block whose ratio is not finite and positive, or
/// whose rescaled factor would not be a finite fp16, is left as it is.
fn remove_gain(ty: GgmlType, src: &[f32], dst: &mut [u8], importance: &[f32]) {
    let mut decoded = vec![0f32; src.len()];
    dequantize_row(ty, dst, &mut decoded);
    let sigma2 = src
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        / src.len() as f64;
    let blocks = dst
        .chunks_exact_mut(ty.type_size())
        .zip(src.chunks_exact(ty.block_size()))
        .zip(decoded.chunks_exact(ty.block_size()))
        .zip(importance.chunks_exact(ty.block_size()));
    for (((out, x), y), imp) in blocks {
        let (mut xx, mut xy) = (0f64, 0f64);
        for ((&x, &y), &q) in x.iter().zip(y).zip(imp) {
            let (x, y) = (f64::from(x), f64::from(y));
            let w = f64::from(q) * (sigma2 + x * x).sqrt();
            xx += w * x * x;
            xy += w * x * y;
        }
        let g = xx / xy;
        if !(g.is_finite() && g > 0.0) {
            continue;
        }
        let scaled: Vec<u16> = gain_fields(ty)
            .iter()
            .map(|&at| {
                let d = float::f16_bits_to_f32(u16::from_le_bytes([out[at], out[at + 1]]));
                float::f32_to_f16_bits((f64::from(d) * g) as f32)
            })
            .collect();
        if scaled
            .iter()
            .all(|&b| float::f16_bits_to_f32(b).is_finite())
        {
            for (&at, b) in gain_fields(ty).iter().zip(scaled) {
                out[at..at + 2].copy_from_slice(&b.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::test_util::normal_row;

    const TYPES: [GgmlType; 10] = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
    ];

    fn encode(ty: GgmlType, x: &[f32], imp: Option<&[f32]>, mode: QuantMode) -> Vec<u8> {
        let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
        quantize_row_mode(ty, x, &mut q, imp, mode);
        q
    }

    #[test]
    fn ggml_mode_and_no_importance_are_quantize_row() {
        let x = normal_row(7, 512, 0.05);
        let imp: Vec<f32> = normal_row(8, 512, 1.0).iter().map(|v| v * v).collect();
        for ty in TYPES {
            let mut want = vec![0u8; ty.row_bytes(x.len()).unwrap()];
            quantize_row(ty, &x, &mut want, Some(&imp));
            assert_eq!(encode(ty, &x, Some(&imp), QuantMode::Ggml), want, "{ty}");
            quantize_row(ty, &x, &mut want, None);
            assert_eq!(encode(ty, &x, None, QuantMode::Unbiased), want, "{ty}");
        }
    }

    #[test]
    fn unbiased_mode_removes_the_weighted_gain_error() {
        let x = normal_row(11, 1024, 0.05);
        let imp: Vec<f32> = normal_row(12, 1024, 1.0).iter().map(|v| v * v).collect();
        let sigma2 = x.iter().map(|&v| f64::from(v * v)).sum::<f64>() / x.len() as f64;
        // Σ w x (x − x̂) / Σ w x² over each block: the relative gain error.
        let gain_errors = |ty: GgmlType, q: &[u8]| -> Vec<f64> {
            let mut y = vec![0f32; x.len()];
            dequantize_row(ty, q, &mut y);
            let n = ty.block_size();
            (0..x.len() / n)
                .map(|b| {
                    let (mut xx, mut xe) = (0f64, 0f64);
                    for j in b * n..(b + 1) * n {
                        let w = f64::from(imp[j]) * (sigma2 + f64::from(x[j] * x[j])).sqrt();
                        xx += w * f64::from(x[j] * x[j]);
                        xe += w * f64::from(x[j]) * f64::from(x[j] - y[j]);
                    }
                    xe / xx
                })
                .collect()
        };
        for ty in TYPES {
            let ggml = gain_errors(ty, &encode(ty, &x, Some(&imp), QuantMode::Ggml));
            let unbiased = gain_errors(ty, &encode(ty, &x, Some(&imp), QuantMode::Unbiased));
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            if ty == GgmlType::Q8_0 {
                assert_eq!(ggml, unbiased, "Q8_0 ignores importance");
                continue;
            }
            // fp16 rounding of the rescaled factors leaves up to ~2^-11 of gain error.
            for g in &unbiased {
                assert!(g.abs() < 1.5e-3, "{ty}: block gain error {g}");
            }
            assert!(
                mean(&ggml) > 0.0,
                "{ty}: ggml's fit shrinks ({})",
                mean(&ggml)
            );
        }
    }
}
