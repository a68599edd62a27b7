//! Whole-file types (llama.cpp's `llama_ftype`): the name a user asks for, the id written as
//! `general.file_type`, and the tensor type most weights get. One row per file type.

use crate::GgmlType;
use std::fmt;

/// A whole-file type: a default tensor type and, for the `_S`/`_M`/`_L` mixes, a per-tensor
/// policy (applied by the quantizer, not here).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K_S,
    Q3_K_M,
    Q3_K_L,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
    Q6_K,
    IQ4_NL,
    IQ4_XS,
}

struct FileTypeInfo {
    ft: FileType,
    name: &'static str,
    /// `general.file_type`.
    gguf_id: u32,
    base: GgmlType,
}

const fn row(ft: FileType, name: &'static str, gguf_id: u32, base: GgmlType) -> FileTypeInfo {
    FileTypeInfo {
        ft,
        name,
        gguf_id,
        base,
    }
}

impl FileType {
    /// How many file types there are.
    pub const COUNT: usize = FileType::IQ4_XS as usize + 1;
}

use FileType as F;
use GgmlType as T;

/// One row per file type, in declaration order.
const FILE_TYPES: [FileTypeInfo; FileType::COUNT] = [
    row(F::F32, "F32", 0, T::F32),
    row(F::F16, "F16", 1, T::F16),
    row(F::BF16, "BF16", 32, T::BF16),
    row(F::Q4_0, "Q4_0", 2, T::Q4_0),
    row(F::Q4_1, "Q4_1", 3, T::Q4_1),
    row(F::Q5_0, "Q5_0", 8, T::Q5_0),
    row(F::Q5_1, "Q5_1", 9, T::Q5_1),
    row(F::Q8_0, "Q8_0", 7, T::Q8_0),
    row(F::Q2_K, "Q2_K", 10, T::Q2_K),
    row(F::Q3_K_S, "Q3_K_S", 11, T::Q3_K),
    row(F::Q3_K_M, "Q3_K_M", 12, T::Q3_K),
    row(F::Q3_K_L, "Q3_K_L", 13, T::Q3_K),
    row(F::Q4_K_S, "Q4_K_S", 14, T::Q4_K),
    row(F::Q4_K_M, "Q4_K_M", 15, T::Q4_K),
    row(F::Q5_K_S, "Q5_K_S", 16, T::Q5_K),
    row(F::Q5_K_M, "Q5_K_M", 17, T::Q5_K),
    row(F::Q6_K, "Q6_K", 18, T::Q6_K),
    row(F::IQ4_NL, "IQ4_NL", 25, T::IQ4_NL),
    row(F::IQ4_XS, "IQ4_XS", 30, T::IQ4_XS),
];

impl FileType {
    fn info(self) -> &'static FileTypeInfo {
        &FILE_TYPES[self as usize]
    }

    /// Every file type, in declaration order.
    pub fn all() -> impl Iterator<Item = FileType> {
        FILE_TYPES.iter().map(|r| r.ft)
    }

    /// Case-insensitive lookup (`q4_k_m` = `Q4_K_M`).
    pub fn from_name(name: &str) -> Option<FileType> {
        FILE_TYPES
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .map(|r| r.ft)
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn gguf_id(self) -> u32 {
        self.info().gguf_id
    }

    /// The tensor type most weights get.
    pub fn base(self) -> GgmlType {
        self.info().base
    }

    /// The file type a GGUF's `general.file_type` names.
    pub fn from_gguf_id(id: u32) -> Option<FileType> {
        FILE_TYPES.iter().find(|r| r.gguf_id == id).map(|r| r.ft)
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order_and_ids_round_trip() {
        for (i, r) in FILE_TYPES.iter().enumerate() {
            assert_eq!(r.ft as usize, i, "{}", r.name);
            assert_eq!(FileType::from_gguf_id(r.gguf_id), Some(r.ft));
            assert_eq!(FileType::from_name(&r.name.to_lowercase()), Some(r.ft));
        }
        assert_eq!(FileType::Q4_K_M.gguf_id(), 15);
        assert_eq!(FileType::from_name("q4_k_x"), None);
    }
}
