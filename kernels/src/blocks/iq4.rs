//! What IQ4_NL and IQ4_XS share: groups of 32 4-bit indices into one fixed non-linear table of
//! 16 levels ([`KVALUES`], denser near zero where weights are), packed as the legacy types pack
//! their nibbles (element j in the low nibble of byte j, element j + 16 in the high one), and the
//! exact integer sum of a group against 32 8-bit activations.

use super::i8s;
use super::legacy::{nibble_pairs, Levels, QK};

/// ggml's `kvalues_iq4nl`: the 16 levels, ascending. There is no 0 (index 8 is +1): an all-zero
/// group stores d = 0.
pub(crate) const KVALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Write 32 indices as 16 bytes of nibbles.
#[inline]
pub(super) fn pack(levels: &[u8], out: &mut [u8]) {
    let (lo, hi) = levels.split_at(QK / 2);
    for ((o, &a), &b) in out[..QK / 2].iter_mut().zip(lo).zip(hi) {
        *o = a | (b << 4);
    }
}

/// The 32 table values of a group's 16 nibble bytes, in element order.
#[inline]
pub(crate) fn values(qs: &[u8]) -> [i8; QK] {
    let mut v = [0i8; QK];
    let (lo, hi) = v.split_at_mut(QK / 2);
    for ((lo, hi), (a, b)) in lo.iter_mut().zip(hi).zip(nibble_pairs(qs)) {
        *lo = KVALUES[usize::from(a)];
        *hi = KVALUES[usize::from(b)];
    }
    v
}

/// Σ value·y over one group: its 16 nibble bytes `qs` and 32 signed activation bytes `y`. Exact
/// (|Σ| ≤ 32·127·127); every SIMD kernel must equal it.
#[inline]
pub(super) fn isum(qs: &[u8], y: &[u8]) -> i32 {
    values(qs)
        .iter()
        .zip(i8s(&y[..QK]))
        .map(|(&v, y)| i32::from(v) * y)
        .sum()
}

/// A group's indices (one per element, each below 16) from the search.
pub(super) type Indices = Levels;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_round_trip_through_the_table() {
        let idx: Indices = std::array::from_fn(|j| (j * 5 % 16) as u8);
        let mut qs = [0u8; 16];
        pack(&idx, &mut qs);
        let want: Vec<i8> = idx.iter().map(|&i| KVALUES[usize::from(i)]).collect();
        assert_eq!(values(&qs).to_vec(), want);
        let y: Vec<u8> = (0..32).map(|j| (j as i8 - 16) as u8).collect();
        let exact: i32 = want
            .iter()
            .zip(0..)
            .map(|(&v, j)| i32::from(v) * (j - 16))
            .sum();
        assert_eq!(isum(&qs, &y), exact);
    }
}
