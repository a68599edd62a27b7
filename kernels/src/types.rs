//! The ggml tensor type table: ids, names and block layout. One row per type.

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
    BF16,
}

/// Layout facts of one type: `block` elements are stored in `bytes` bytes.
#[derive(Clone, Copy, Debug)]
pub struct TypeInfo {
    pub ty: GgmlType,
    pub id: u32,
    pub name: &'static str,
    pub block: usize,
    pub bytes: usize,
}

/// QK_K: the super-block size of the K-quants.
pub const QK_K: usize = 256;

const fn row(ty: GgmlType, id: u32, name: &'static str, block: usize, bytes: usize) -> TypeInfo {
    TypeInfo {
        ty,
        id,
        name,
        block,
        bytes,
    }
}

/// Every type llq knows, with ggml's ids and block sizes (ggml-common.h).
pub const TYPES: [TypeInfo; 15] = [
    row(GgmlType::F32, 0, "F32", 1, 4),
    row(GgmlType::F16, 1, "F16", 1, 2),
    row(GgmlType::Q4_0, 2, "Q4_0", 32, 18),
    row(GgmlType::Q4_1, 3, "Q4_1", 32, 20),
    row(GgmlType::Q5_0, 6, "Q5_0", 32, 22),
    row(GgmlType::Q5_1, 7, "Q5_1", 32, 24),
    row(GgmlType::Q8_0, 8, "Q8_0", 32, 34),
    row(GgmlType::Q8_1, 9, "Q8_1", 32, 36),
    row(GgmlType::Q2_K, 10, "Q2_K", QK_K, 84),
    row(GgmlType::Q3_K, 11, "Q3_K", QK_K, 110),
    row(GgmlType::Q4_K, 12, "Q4_K", QK_K, 144),
    row(GgmlType::Q5_K, 13, "Q5_K", QK_K, 176),
    row(GgmlType::Q6_K, 14, "Q6_K", QK_K, 210),
    row(GgmlType::Q8_K, 15, "Q8_K", QK_K, 292),
    row(GgmlType::BF16, 30, "BF16", 1, 2),
];

impl GgmlType {
    pub fn info(self) -> &'static TypeInfo {
        // The table is in declaration order, so the discriminant indexes it.
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

    pub fn id(self) -> u32 {
        self.info().id
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn block_size(self) -> usize {
        self.info().block
    }

    pub fn type_size(self) -> usize {
        self.info().bytes
    }

    pub fn is_quantized(self) -> bool {
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
    fn row_bytes_refuses_partial_blocks() {
        assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q4_K.row_bytes(416), None);
        assert_eq!(GgmlType::Q8_0.row_bytes(64), Some(68));
        assert_eq!(GgmlType::F16.row_bytes(3), Some(6));
    }
}
