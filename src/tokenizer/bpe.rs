//! Byte-level BPE (llama.cpp's "gpt2" tokenizer with the "llama-bpe" pre-tokenizer, i.e. Llama 3).
//!
//! Encoding, as tiktoken and llama.cpp do it:
//! 1. The text is split by Llama 3's pre-tokenizer regex (contractions, letters with one leading
//!    non-letter, 1–3 digits, punctuation runs, newlines, and whitespace runs that leave their
//!    last space to the next word: `\s+(?!\S)`, a lookahead, hence `fancy-regex`).
//! 2. A piece that is a token as a whole is that token (llama.cpp's `ignore_merges`).
//! 3. Otherwise it starts as one token per byte, and the adjacent pair with the lowest merge
//!    rank is merged, again and again (ties: the leftmost pair).
//!
//! Decoding maps each token's GPT-2 characters back to bytes; control tokens print nothing.

use super::gpt2::{byte_to_unicode, LLAMA3_PATTERN};
use std::collections::HashMap;

pub struct Bpe {
    regex: fancy_regex::Regex,
    /// Bytes of each token id (empty for tokens that print nothing).
    bytes: Vec<Vec<u8>>,
    /// Bytes → id of the normal tokens.
    index: HashMap<Vec<u8>, u32>,
    /// Id of each single byte.
    byte_ids: [u32; 256],
    /// (left, right) → (merge rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
}

impl Bpe {
    /// `tokens` in GPT-2 spelling, `printable[i]` whether token i is text (normal or
    /// user-defined) rather than a control token, and the merges `"left right"` in rank order.
    pub fn new(tokens: &[String], printable: &[bool], merges: &[String]) -> Result<Bpe, String> {
        let mut from_char = HashMap::new();
        for (b, c) in byte_to_unicode().iter().enumerate() {
            from_char.insert(*c, b as u8);
        }
        let decode = |s: &str| -> Option<Vec<u8>> {
            s.chars().map(|c| from_char.get(&c).copied()).collect()
        };
        let mut bytes = Vec::with_capacity(tokens.len());
        let mut index = HashMap::with_capacity(tokens.len());
        for (i, (t, &p)) in tokens.iter().zip(printable).enumerate() {
            let b = if p {
                // A user-defined token outside the byte alphabet prints verbatim.
                decode(t).unwrap_or_else(|| t.as_bytes().to_vec())
            } else {
                Vec::new()
            };
            if p && !b.is_empty() {
                index.insert(b.clone(), i as u32);
            }
            bytes.push(b);
        }
        let mut byte_ids = [0u32; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = *index
                .get([b as u8].as_slice())
                .ok_or_else(|| format!("the vocabulary lacks a token for byte {b:#04x}"))?;
        }
        let mut merge_map = HashMap::with_capacity(merges.len());
        for (rank, m) in merges.iter().enumerate() {
            let (l, r) = m
                .split_once(' ')
                .ok_or_else(|| format!("merge {rank} {m:?} is not \"left right\""))?;
            let lookup = |s: &str| decode(s).and_then(|b| index.get(&b).copied());
            let (Some(li), Some(ri)) = (lookup(l), lookup(r)) else {
                return Err(format!("merge {rank} {m:?} names an unknown token"));
            };
            let mut joined = bytes[li as usize].clone();
            joined.extend_from_slice(&bytes[ri as usize]);
            let Some(&id) = index.get(&joined) else {
                return Err(format!("merge {rank} {m:?} makes no token"));
            };
            merge_map.entry((li, ri)).or_insert((rank as u32, id));
        }
        let regex = fancy_regex::Regex::new(LLAMA3_PATTERN).map_err(|e| e.to_string())?;
        Ok(Bpe {
            regex,
            bytes,
            index,
            byte_ids,
            merges: merge_map,
        })
    }

    /// Token ids of `text` (no special tokens).
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) {
        let mut at = 0;
        while at < text.len() {
            let m = match self.regex.find_from_pos(text, at) {
                Ok(Some(m)) if m.end() > at => m,
                // The pattern matches any character; this is only a backstop.
                _ => {
                    let rest = &text[at..];
                    self.encode_piece(rest, out);
                    break;
                }
            };
            if m.start() > at {
                self.encode_piece(&text[at..m.start()], out);
            }
            self.encode_piece(m.as_str(), out);
            at = m.end();
        }
    }

    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>) {
        let b = piece.as_bytes();
        if let Some(&id) = self.index.get(b) {
            out.push(id);
            return;
        }
        let mut parts: Vec<u32> = b.iter().map(|&x| self.byte_ids[x as usize]).collect();
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for i in 0..parts.len().saturating_sub(1) {
                if let Some(&(rank, id)) = self.merges.get(&(parts[i], parts[i + 1])) {
                    if best.is_none_or(|(r, _, _)| rank < r) {
                        best = Some((rank, i, id));
                    }
                }
            }
            let Some((_, i, id)) = best else { break };
            parts[i] = id;
            parts.remove(i + 1);
        }
        out.extend(parts);
    }

    /// The bytes token `id` prints as (nothing for control tokens and unknown ids).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }
}
