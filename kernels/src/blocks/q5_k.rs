//! Q5_K: 256 values in 176 bytes: `d`, `dmin` (fp16), 12 bytes of packed 6-bit sub-block scales
//! and mins, 32 bytes of fifth bits, then 128 bytes of low nibbles laid out as Q4_K's (see
//! `sub32`). Element `i` of sub-block `j` (32 elements each) is `d·sc_j·q − dmin·m_j`. Dotted
//! with Q8_K activations.

use super::kquant::{dot, Found, KQuant, KSums, Levels, SuperBlock};
use super::sub32::{self, LevelsAt, Sub32, D, DMIN, HEAD};
use super::{dequantize_blocks, BlockType, Codes};
use crate::dot::DotFn;
use crate::rounding::kquant::QkxParams;
use crate::rounding::lanes;
use llq_types::GgmlType;

/// The 32 bytes of fifth bits: that of element `i` of sub-block `j` is bit `j` of byte `i`.
pub(crate) const QH: usize = HEAD;
/// The 128 bytes of low nibbles.
pub(crate) const QS: usize = QH + 32;

#[allow(non_camel_case_types)]
pub(crate) struct Q5_K;

const SUB32: Sub32 = Sub32 {
    nmax: 31,
    search: QkxParams {
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        mad: false,
    },
    clamp_imatrix_scales: true,
};

impl BlockType for Q5_K {
    const TYPE: GgmlType = GgmlType::Q5_K;
    const FACTORS: &'static [usize] = &[D, DMIN];
    const USES_IMPORTANCE: bool = true;
    const DOT: Option<DotFn> = Some(vec_dot);

    fn quantize_row(src: &[f32], dst: &mut [u8], importance: Option<&[f32]>) {
        lanes::encode_row::<Self>(src, dst, importance)
    }

    const CODES: Option<Codes> = Some(Codes {
        max: SUB32.nmax as u8,
        map: sub32::code_map,
        write: write_codes,
    });

    fn dequantize_row(src: &[u8], dst: &mut [f32]) {
        dequantize_blocks(Self::TYPE, src, dst, |b, y: &mut SuperBlock| {
            sub32::decode(b, y, LEVELS)
        })
    }
}

impl KQuant for Q5_K {
    const SUBS: usize = 8;

    fn search(x: &SuperBlock, importance: Option<&SuperBlock>) -> Found {
        SUB32.search(x, importance)
    }

    #[inline(always)]
    fn search_lanes<const L: usize>(x: &[f32], importance: Option<&[f32]>, found: &mut [Found]) {
        SUB32.search_lanes::<L>(x, importance, found)
    }

    fn write(x: &SuperBlock, importance: Option<&SuperBlock>, found: &Found, out: &mut [u8]) {
        SUB32.write(x, found, importance.is_some(), out, LEVELS)
    }
}

fn write_levels(levels: &Levels, out: &mut [u8]) {
    let (qh, qs) = out[QH..].split_at_mut(QS - QH);
    sub32::pack_levels(levels, qs, Some(qh));
}

fn write_codes(codes: &[u8], out: &mut [u8]) {
    write_levels(codes.try_into().expect("a block of codes"), out)
}

/// Where the levels are.
const LEVELS: LevelsAt = LevelsAt {
    qs: QS,
    qh: Some(QH),
};

/// See [`KSums`].
fn isum(x: &[u8], y: &[u8]) -> KSums {
    sub32::isum(x, y, LEVELS)
}

fn vec_dot(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot(n, w, a, GgmlType::Q5_K, (D, Some(DMIN)), isum)
}
