//! SentencePiece `tokenizer.model`: a protobuf `ModelProto`, decoded by hand.
//!
//! Only the fields llq needs are read (pieces, the special ids and a few trainer / normalizer
//! switches); every other field is skipped by wire type, so newer files with extra fields load.
//! The input is untrusted: every length is checked against the bytes that remain and nothing is
//! allocated from a declared length, so a truncated or garbled file gives an error, not a panic.

use crate::error::{Result, WithPath};
use llq_types::TokenType;
use std::ops::Range;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: TokenType,
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

impl Default for SpmModel {
    /// The defaults `sentencepiece_model.proto` declares for fields absent from a file.
    fn default() -> Self {
        SpmModel {
            pieces: Vec::new(),
            model_type: 1,
            byte_fallback: false,
            unk_id: 0,
            bos_id: 1,
            eos_id: 2,
            pad_id: -1,
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
        }
    }
}

pub fn load(path: &Path) -> Result<SpmModel> {
    let bytes = std::fs::read(path).map_err(|e| crate::Error::io(path, "cannot read", e))?;
    parse(&bytes).at(path)
}

pub fn parse(bytes: &[u8]) -> std::result::Result<SpmModel, String> {
    // A tiktoken file would usually also fail as protobuf, but the message would be misleading;
    // Llama 3 ships its tokenizer under the same file name, so this mix-up is expected.
    if crate::tiktoken::is_tiktoken(bytes) {
        return Err("is a tiktoken (Llama 3) tokenizer, not SentencePiece".into());
    }
    match parse_model(bytes) {
        Ok(model) => Ok(model),
        Err(e) if looks_like_text(bytes) => Err(format!(
            "not a SentencePiece model: the file is text (a tokenizer.json?), not protobuf ({e})"
        )),
        Err(e) => Err(format!("not a valid SentencePiece model: {e}")),
    }
}

// ---- ModelProto fields ----------------------------------------------------------------------

const MODEL_PIECES: u32 = 1;
const MODEL_TRAINER_SPEC: u32 = 2;
const MODEL_NORMALIZER_SPEC: u32 = 3;

const PIECE_TEXT: u32 = 1;
const PIECE_SCORE: u32 = 2;
const PIECE_TYPE: u32 = 3;

const TRAINER_MODEL_TYPE: u32 = 3;
const TRAINER_BYTE_FALLBACK: u32 = 35;
const TRAINER_UNK_ID: u32 = 40;
const TRAINER_BOS_ID: u32 = 41;
const TRAINER_EOS_ID: u32 = 42;
const TRAINER_PAD_ID: u32 = 43;

const NORMALIZER_ADD_DUMMY_PREFIX: u32 = 3;
const NORMALIZER_REMOVE_EXTRA_WHITESPACES: u32 = 4;

fn parse_model(bytes: &[u8]) -> std::result::Result<SpmModel, String> {
    let mut model = SpmModel::default();
    let mut saw_trainer_spec = false;
    let mut reader = Reader::new(bytes, 0..bytes.len());
    while let Some(field) = reader.next_field()? {
        match field.number {
            MODEL_PIECES => {
                let index = model.pieces.len();
                let piece = parse_piece(bytes, field.message()?)
                    .map_err(|e| format!("piece {index}: {e}"))?;
                model.pieces.push(piece);
            }
            // Embedded messages given twice are merged field by field, as protobuf specifies.
            MODEL_TRAINER_SPEC => {
                apply_trainer_spec(&mut model, bytes, field.message()?)
                    .map_err(|e| format!("trainer_spec: {e}"))?;
                saw_trainer_spec = true;
            }
            MODEL_NORMALIZER_SPEC => apply_normalizer_spec(&mut model, bytes, field.message()?)
                .map_err(|e| format!("normalizer_spec: {e}"))?,
            _ => {}
        }
    }
    if model.pieces.is_empty() {
        return Err("no pieces".into());
    }
    // Every trainer writes a trainer_spec after the pieces. Without it the special ids would
    // silently take their defaults, which is what a file cut right after a piece looks like.
    if !saw_trainer_spec {
        return Err("no trainer_spec after the pieces (truncated file?)".into());
    }
    Ok(model)
}

fn parse_piece(bytes: &[u8], range: Range<usize>) -> std::result::Result<Piece, String> {
    let mut text = None;
    let mut score = 0.0;
    let mut kind = TokenType::Normal;
    let mut reader = Reader::new(bytes, range);
    while let Some(field) = reader.next_field()? {
        match field.number {
            PIECE_TEXT => text = Some(field.string()?),
            PIECE_SCORE => score = field.float()?,
            PIECE_TYPE => {
                let value = field.int32()?;
                kind = TokenType::from_id(value.into())
                    .ok_or_else(|| format!("unknown piece type {value}"))?;
            }
            _ => {}
        }
    }
    // SentencePiece itself rejects empty pieces when loading a model.
    match text {
        Some(piece) if !piece.is_empty() => Ok(Piece { piece, score, kind }),
        _ => Err("empty piece text".into()),
    }
}

fn apply_trainer_spec(
    model: &mut SpmModel,
    bytes: &[u8],
    range: Range<usize>,
) -> std::result::Result<(), String> {
    let mut reader = Reader::new(bytes, range);
    while let Some(field) = reader.next_field()? {
        match field.number {
            TRAINER_MODEL_TYPE => model.model_type = field.int32()?,
            TRAINER_BYTE_FALLBACK => model.byte_fallback = field.bool()?,
            TRAINER_UNK_ID => model.unk_id = field.int32()?,
            TRAINER_BOS_ID => model.bos_id = field.int32()?,
            TRAINER_EOS_ID => model.eos_id = field.int32()?,
            TRAINER_PAD_ID => model.pad_id = field.int32()?,
            _ => {}
        }
    }
    Ok(())
}

fn apply_normalizer_spec(
    model: &mut SpmModel,
    bytes: &[u8],
    range: Range<usize>,
) -> std::result::Result<(), String> {
    let mut reader = Reader::new(bytes, range);
    while let Some(field) = reader.next_field()? {
        match field.number {
            NORMALIZER_ADD_DUMMY_PREFIX => model.add_dummy_prefix = field.bool()?,
            NORMALIZER_REMOVE_EXTRA_WHITESPACES => model.remove_extra_whitespaces = field.bool()?,
            _ => {}
        }
    }
    Ok(())
}

// ---- protobuf wire format -------------------------------------------------------------------

/// One field's payload. Length-delimited payloads are ranges of the whole input, so nested
/// messages report absolute byte offsets in their errors.
#[derive(Debug)]
enum Payload {
    Varint(u64),
    Fixed64,
    Bytes(Range<usize>),
    Fixed32(u32),
}

#[derive(Debug)]
struct Field<'a> {
    number: u32,
    /// Where the field's tag starts, for error messages.
    offset: usize,
    payload: Payload,
    bytes: &'a [u8],
}

impl Field<'_> {
    fn wrong_type(&self, expected: &str) -> String {
        format!(
            "field {} at byte {} is not {expected} (wire type mismatch)",
            self.number, self.offset
        )
    }

    fn varint(&self) -> std::result::Result<u64, String> {
        match self.payload {
            Payload::Varint(v) => Ok(v),
            _ => Err(self.wrong_type("a varint")),
        }
    }

    /// int32 and enum fields: negative values are sign-extended to 10-byte varints on the wire,
    /// so the low 32 bits hold the value.
    fn int32(&self) -> std::result::Result<i32, String> {
        Ok(self.varint()? as u32 as i32)
    }

    fn bool(&self) -> std::result::Result<bool, String> {
        Ok(self.varint()? != 0)
    }

    fn float(&self) -> std::result::Result<f32, String> {
        match self.payload {
            Payload::Fixed32(bits) => Ok(f32::from_bits(bits)),
            _ => Err(self.wrong_type("a 32-bit float")),
        }
    }

    fn message(&self) -> std::result::Result<Range<usize>, String> {
        match &self.payload {
            Payload::Bytes(range) => Ok(range.clone()),
            _ => Err(self.wrong_type("an embedded message")),
        }
    }

    fn string(&self) -> std::result::Result<String, String> {
        let range = self.message().map_err(|_| self.wrong_type("a string"))?;
        let start = range.start;
        String::from_utf8(self.bytes[range].to_vec()).map_err(|e| {
            format!(
                "string at byte {start} is not valid UTF-8: {}",
                e.utf8_error()
            )
        })
    }
}

/// Reads the fields of one message occupying `bytes[pos..end]`.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], range: Range<usize>) -> Self {
        Reader {
            bytes,
            pos: range.start,
            end: range.end,
        }
    }

    fn next_field(&mut self) -> std::result::Result<Option<Field<'a>>, String> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let offset = self.pos;
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > u64::from(MAX_FIELD_NUMBER) {
            return Err(format!("invalid field number {number} at byte {offset}"));
        }
        let payload = match tag & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Payload::Fixed64
            }
            2 => {
                let len = self.varint()?;
                Payload::Bytes(self.take_len(len)?)
            }
            5 => {
                let b = self.take(4)?;
                let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                Payload::Fixed32(bits)
            }
            3 | 4 => {
                return Err(format!(
                    "protobuf groups (at byte {offset}) are not supported"
                ))
            }
            other => return Err(format!("invalid wire type {other} at byte {offset}")),
        };
        Ok(Some(Field {
            number: number as u32,
            offset,
            payload,
            bytes: self.bytes,
        }))
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let Some(&byte) = self.bytes[..self.end].get(self.pos) else {
                return Err(format!("truncated varint at byte {start}"));
            };
            self.pos += 1;
            // The tenth byte carries only bit 63; anything more does not fit in 64 bits.
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(format!("varint at byte {start} overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint at byte {start} overflows 64 bits"))
    }

    fn take(&mut self, len: usize) -> std::result::Result<&'a [u8], String> {
        let range = self.take_len(len as u64)?;
        Ok(&self.bytes[range])
    }

    /// The next `len` bytes as a range, checked against what is left of this message.
    fn take_len(&mut self, len: u64) -> std::result::Result<Range<usize>, String> {
        let left = self.end - self.pos;
        match usize::try_from(len) {
            Ok(len) if len <= left => {
                let range = self.pos..self.pos + len;
                self.pos += len;
                Ok(range)
            }
            _ => Err(format!(
                "field at byte {} needs {len} bytes but only {left} remain (truncated?)",
                self.pos
            )),
        }
    }
}

const MAX_VARINT_LEN: usize = 10;
const MAX_FIELD_NUMBER: u32 = (1 << 29) - 1;

// ---- recognising other tokenizer files ------------------------------------------------------

/// Printable text at the start of the file (JSON, a vocab list...) rather than binary protobuf,
/// whose first bytes are a tag and a small length.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(256)];
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A multi-byte character cut by the 256-byte window is still text.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.trim().is_empty()
        && text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_varint(bytes: &[u8]) -> std::result::Result<u64, String> {
        Reader::new(bytes, 0..bytes.len()).varint()
    }

    #[test]
    fn varint_limits() {
        assert_eq!(read_varint(&[0x00]), Ok(0));
        assert_eq!(read_varint(&[0xac, 0x02]), Ok(300));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&max), Ok(u64::MAX));
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(read_varint(&too_big).unwrap_err().contains("overflows"));
        assert!(read_varint(&[0xff; 11]).unwrap_err().contains("overflows"));
        assert!(read_varint(&[0x80, 0x80])
            .unwrap_err()
            .contains("truncated"));
    }

    #[test]
    fn varint_stops_at_message_end() {
        // A varint may not run into the bytes after its enclosing message.
        let bytes = [0x80, 0x01];
        assert!(Reader::new(&bytes, 0..1).varint().is_err());
    }

    #[test]
    fn text_detection() {
        assert!(looks_like_text(b"{\n  \"version\": \"1.0\"}"));
        assert!(!looks_like_text(b"\n\x0b\n\x05<unk>\x15\0\0\0\0"));
    }
}
