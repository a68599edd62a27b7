//! The ggml tensor type table: ids, names, block layout and activation type. One row per type.

use std::fmt;

/// A ggml tensor element type, as stored in a GGUF tensor info.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ4_NL,
    IQ4_XS,
    BF16,
}

/// Which kind of encoding a type is, as ggml groups them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// F32, F16, BF16: one element per block, no quantization.
    Float,
    /// The 32-element types with a linear grid (Q4_0 ... Q8_1).
    Legacy,
    /// The 256-element super-block types with quantized sub-block scales (Q2_K ... Q8_K).
    KQuant,
    /// The i-quants: levels from a fixed non-linear table (IQ4_NL, IQ4_XS).
    IQuant,
}

/// Layout facts of one type: `block` elements are stored in `bytes` bytes.
#[derive(Clone, Copy, Debug)]
pub struct TypeInfo {
    pub ty: GgmlType,
    /// ggml's id (`ggml_type`), as GGUF tensor infos store it.
    pub id: u32,
    pub name: &'static str,
    pub family: Family,
    pub block: usize,
    pub bytes: usize,
    /// The type activations are quantized to before a dot product with weights of this type
    /// (ggml's `vec_dot_type`); `None` for types that only ever hold activations.
    pub activation: Option<GgmlType>,
}

/// QK_K: the super-block size of the K-quants.
pub const QK_K: usize = 256;

const fn row(
    ty: GgmlType,
    id: u32,
    name: &'static str,
    family: Family,
    (block, bytes): (usize, usize),
    activation: Option<GgmlType>,
) -> TypeInfo {
    TypeInfo {
        ty,
        id,
        name,
        family,
        block,
        bytes,
        activation,
    }
}

use Family as F;
use GgmlType as T;

/// Every type llq knows, with ggml's ids, block sizes (ggml-common.h) and activation types, in
/// declaration order (so a type's discriminant indexes it).
pub const TYPES: [TypeInfo; GgmlType::COUNT] = [
    row(T::F32, 0, "F32", F::Float, (1, 4), Some(T::F32)),
    row(T::F16, 1, "F16", F::Float, (1, 2), Some(T::F16)),
    row(T::Q4_0, 2, "Q4_0", F::Legacy, (32, 18), Some(T::Q8_0)),
    row(T::Q4_1, 3, "Q4_1", F::Legacy, (32, 20), Some(T::Q8_1)),
    row(T::Q5_0, 6, "Q5_0", F::Legacy, (32, 22), Some(T::Q8_0)),
    row(T::Q5_1, 7, "Q5_1", F::Legacy, (32, 24), Some(T::Q8_1)),
    row(T::Q8_0, 8, "Q8_0", F::Legacy, (32, 34), Some(T::Q8_0)),
    row(T::Q8_1, 9, "Q8_1", F::Legacy, (32, 36), None),
    row(T::Q2_K, 10, "Q2_K", F::KQuant, (QK_K, 84), Some(T::Q8_K)),
    row(T::Q3_K, 11, "Q3_K", F::KQuant, (QK_K, 110), Some(T::Q8_K)),
    row(T::Q4_K, 12, "Q4_K", F::KQuant, (QK_K, 144), Some(T::Q8_K)),
    row(T::Q5_K, 13, "Q5_K", F::KQuant, (QK_K, 176), Some(T::Q8_K)),
    row(T::Q6_K, 14, "Q6_K", F::KQuant, (QK_K, 210), Some(T::Q8_K)),
    row(T::Q8_K, 15, "Q8_K", F::KQuant, (QK_K, 292), None),
    row(T::IQ4_NL, 20, "IQ4_NL", F::IQuant, (32, 18), Some(T::Q8_0)),
    row(
        T::IQ4_XS,
        23,
        "IQ4_XS",
        F::IQuant,
        (QK_K, 136),
        Some(T::Q8_K),
    ),
    row(T::BF16, 30, "BF16", F::Float, (1, 2), Some(T::BF16)),
];

impl GgmlType {
    /// How many types there are: the length of every per-type table.
    pub const COUNT: usize = GgmlType::BF16 as usize + 1;

    /// Every type, in declaration order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TYPES.iter().map(|t| t.ty)
    }

    pub const fn info(self) -> &'static TypeInfo {
        &TYPES[self as usize]
    }

    pub fn from_id(id: u32) -> Option<GgmlType> {
        TYPES.iter().find(|t| t.id == id).map(|t| t.ty)
    }

    /// Case-insensitive lookup by name (`q4_k` = `Q4_K`).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        TYPES
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .map(|t| t.ty)
    }

    pub const fn id(self) -> u32 {
        self.info().id
    }

    pub const fn name(self) -> &'static str {
        self.info().name
    }

    pub const fn family(self) -> Family {
        self.info().family
    }

    pub const fn block_size(self) -> usize {
        self.info().block
    }

    pub const fn type_size(self) -> usize {
        self.info().bytes
    }

    /// The activation type of weights of this type (ggml's `vec_dot_type`).
    pub const fn activation(self) -> Option<GgmlType> {
        self.info().activation
    }

    pub const fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Bytes of a row of `n` elements, or `None` when `n` is not a whole number of blocks.
    pub fn row_bytes(self, n: usize) -> Option<usize> {
        let info = self.info();
        if !n.is_multiple_of(info.block) {
            return None;
        }
        (n / info.block).checked_mul(info.bytes)
    }

    /// Bits per weight of this type.
    pub fn bits_per_weight(self) -> f64 {
        let info = self.info();
        (info.bytes * 8) as f64 / info.block as f64
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order() {
        for (i, t) in TYPES.iter().enumerate() {
            assert_eq!(t.ty as usize, i, "{}", t.name);
            assert_eq!(GgmlType::from_id(t.id), Some(t.ty));
            assert_eq!(GgmlType::from_name(&t.name.to_lowercase()), Some(t.ty));
        }
    }

    #[test]
    fn activations_have_the_weights_block_size() {
        for t in &TYPES {
            if let Some(a) = t.activation {
                assert_eq!(a.block_size(), t.block, "{}", t.name);
            }
        }
    }

    #[test]
    fn families_have_their_block_sizes() {
        for t in &TYPES {
            let sizes: &[usize] = match t.family {
                Family::Float => &[1],
                Family::Legacy => &[32],
                Family::KQuant => &[QK_K],
                Family::IQuant => &[32, QK_K],
            };
            assert!(sizes.contains(&t.block), "{}", t.name);
        }
    }

    #[test]
    fn row_bytes_refuses_partial_blocks() {
        assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q4_K.row_bytes(416), None);
        assert_eq!(GgmlType::Q8_0.row_bytes(64), Some(68));
        assert_eq!(GgmlType::F16.row_bytes(3), Some(6));
    }
}
