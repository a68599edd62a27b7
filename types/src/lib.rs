//! The names and numbers every llq crate agrees on: ggml tensor types ([`GgmlType`], one row per
//! type with its block layout and activation type), whole-file types ([`FileType`]), token
//! types ([`TokenType`]) and GGUF metadata [`keys`]. No I/O and no math: `llq-formats` and
//! `llq-kernels` both depend on this crate and not on each other.

mod file_type;
mod ggml_type;
pub mod keys;
mod token_type;

pub use file_type::FileType;
pub use ggml_type::{Family, GgmlType, TypeInfo, QK_K, TYPES};
pub use token_type::TokenType;
