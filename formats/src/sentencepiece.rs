//! SentencePiece `tokenizer.model` (protobuf ModelProto). STUB: to be implemented.

use crate::error::Result;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceType {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpmModel {
    pub pieces: Vec<Piece>,
    /// TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.
    pub model_type: i32,
    pub byte_fallback: bool,
    pub unk_id: i32,
    pub bos_id: i32,
    pub eos_id: i32,
    pub pad_id: i32,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
}

pub fn load(path: &Path) -> Result<SpmModel> {
    let _ = path;
    todo!()
}

pub fn parse(bytes: &[u8]) -> std::result::Result<SpmModel, String> {
    let _ = bytes;
    todo!()
}
