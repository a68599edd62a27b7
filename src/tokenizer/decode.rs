//! Decoding ids to text, all at once or streamed as tokens are generated (see the notes of
//! [`super`] for the rules).

use super::{Tokenizer, SPACE};
use llq_types::TokenType;

impl Tokenizer {
    /// The raw bytes `id` prints as, on its own: the piece with `▁` as a space, a byte piece's
    /// byte, nothing for control, unknown and unused pieces (or ids outside the vocabulary).
    /// No leading-space removal: see [`Decoder`] for that and for UTF-8 assembly.
    pub fn piece_bytes(&self, id: u32) -> Vec<u8> {
        if let Some(bpe) = &self.bpe {
            return bpe.token_bytes(id).to_vec();
        }
        match self.types.get(id as usize) {
            Some(TokenType::Normal) => self.pieces[id as usize].replace(SPACE, " ").into_bytes(),
            // llama.cpp prints user-defined pieces verbatim.
            Some(TokenType::UserDefined) => self.pieces[id as usize].as_bytes().to_vec(),
            Some(TokenType::Byte) => vec![self.byte_values[&id]],
            _ => Vec::new(),
        }
    }

    /// Text of `ids` (SentencePiece's `DecodeIds`, see the module notes).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut d = self.decoder();
        let mut text = String::new();
        for &id in ids {
            text.push_str(&d.push(id));
        }
        text.push_str(&d.finish());
        text
    }

    /// A streaming decoder: feed ids as they are generated, print what it returns.
    pub fn decoder(&self) -> Decoder<'_> {
        Decoder {
            tok: self,
            bos_ws: true,
            bos_ws_seen: false,
            printed: false,
            bytes: Vec::new(),
        }
    }
}

/// Incremental [`Tokenizer::decode`]: `push` returns the text that is complete so far (a UTF-8
/// character spread over byte pieces is held back until it is whole), `finish` the rest.
/// The concatenated output equals `decode` of all the ids.
pub struct Decoder<'a> {
    tok: &'a Tokenizer,
    /// Whether the next piece may still lose its dummy-prefix space.
    bos_ws: bool,
    bos_ws_seen: bool,
    /// Whether any text was produced (pending bytes count as produced, as in SentencePiece).
    printed: bool,
    /// Bytes of the current run of byte pieces not yet returned.
    bytes: Vec<u8>,
}

impl Decoder<'_> {
    pub fn push(&mut self, id: u32) -> String {
        let tok = self.tok;
        if let Some(bpe) = &tok.bpe {
            self.bytes.extend_from_slice(bpe.token_bytes(id));
            return take_utf8(&mut self.bytes, false);
        }
        let ty = tok.types.get(id as usize).copied();
        if ty == Some(TokenType::Byte) {
            self.bytes.push(tok.byte_values[&id]);
            self.printed = true;
            return take_utf8(&mut self.bytes, false);
        }
        let mut text = take_utf8(&mut self.bytes, true);
        // Control pieces print nothing and leave the dummy-prefix state alone.
        if matches!(ty, Some(TokenType::Control) | None) {
            return text;
        }
        if self.bos_ws_seen || self.printed {
            self.bos_ws = false;
        }
        let bytes = tok.piece_bytes(id);
        let mut piece = String::from_utf8(bytes).unwrap_or_default();
        self.bos_ws_seen = false;
        if self.bos_ws && tok.add_space_prefix && ty == Some(TokenType::Normal) {
            if let Some(rest) = piece.strip_prefix(' ') {
                piece = rest.to_string();
                self.bos_ws_seen = true;
            }
        }
        if !piece.is_empty() {
            self.printed = true;
        }
        text.push_str(&piece);
        text
    }

    /// Whatever is still held back (an incomplete UTF-8 sequence becomes U+FFFD per byte).
    pub fn finish(&mut self) -> String {
        take_utf8(&mut self.bytes, true)
    }
}

/// Complete characters at the front of `bytes` as text, removing them. Invalid bytes become
/// U+FFFD one each (as SentencePiece does); an incomplete sequence at the end is kept unless
/// `all`.
fn take_utf8(bytes: &mut Vec<u8>, all: bool) -> String {
    let mut text = String::new();
    let mut rest: &[u8] = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, tail) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(valid).expect("valid prefix"));
                if e.error_len().is_none() && !all {
                    rest = tail;
                    break;
                }
                text.push('\u{FFFD}');
                rest = &tail[1..];
            }
        }
    }
    let keep = rest.len();
    let n = bytes.len();
    bytes.drain(..n - keep);
    text
}
