//! tiktoken BPE rank files (Llama 3's `tokenizer.model`): one line per token,
//! `base64(token bytes) SPACE rank`. Ranks must run 0, 1, 2, … in line order, and no token may
//! appear twice; any other shape is refused with the line it occurs on.

use crate::error::{Error, Result};
use std::path::Path;

/// The tokens of a tiktoken file: `tokens[rank]` is the byte string of that rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TiktokenRanks {
    pub tokens: Vec<Vec<u8>>,
}

pub fn load(path: &Path) -> Result<TiktokenRanks> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?;
    parse(&bytes).map_err(|m| Error::new(path, m))
}

pub fn parse(bytes: &[u8]) -> std::result::Result<TiktokenRanks, String> {
    let mut tokens: Vec<Vec<u8>> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|_| format!("line {n}: not text"))?;
        let (b64, rank) = text
            .split_once(' ')
            .ok_or_else(|| format!("line {n}: expected `base64 rank`, got {:?}", short(text)))?;
        let token = decode_base64(b64)
            .ok_or_else(|| format!("line {n}: invalid base64 {:?}", short(b64)))?;
        let rank: usize = rank
            .trim()
            .parse()
            .map_err(|_| format!("line {n}: rank {:?} is not a number", short(rank)))?;
        if rank != tokens.len() {
            return Err(if rank < tokens.len() {
                format!("line {n}: duplicate rank {rank}")
            } else {
                format!(
                    "line {n}: rank {rank} where {} was expected (ranks must be contiguous)",
                    tokens.len()
                )
            });
        }
        if let Some(prev) = seen.insert(token.clone(), n) {
            return Err(format!("line {n}: token already given on line {prev}"));
        }
        tokens.push(token);
    }
    if tokens.is_empty() {
        return Err("no tokens in the tiktoken file".into());
    }
    Ok(TiktokenRanks { tokens })
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Standard base64 with `=` padding (what tiktoken files use); `None` for anything else.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.is_empty() || !s.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let chunks = s.len() / 4;
    for (ci, c) in s.chunks(4).enumerate() {
        let pad = c.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && ci + 1 != chunks) {
            return None;
        }
        let mut v = 0u32;
        for &b in &c[..4 - pad] {
            v = (v << 6) | val(b)?;
        }
        v <<= 6 * pad as u32;
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// tiktoken files are text lines `base64(token bytes) SPACE rank`; the first few lines decide.
pub fn is_tiktoken(bytes: &[u8]) -> bool {
    const LINES_CHECKED: usize = 8;
    let head = &bytes[..bytes.len().min(4096)];
    if matches!(head.first(), None | Some(b'\n')) {
        return false;
    }
    let lines = head.split(|&b| b == b'\n');
    // The last line of the head may be cut mid-way, so only complete lines are judged.
    let complete = head.iter().filter(|&&b| b == b'\n').count();
    let judged = complete.clamp(1, LINES_CHECKED);
    lines.take(judged).all(is_tiktoken_line)
}

fn is_tiktoken_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let (token, rank) = (&line[..space], &line[space + 1..]);
    let is_base64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    !token.is_empty()
        && token.iter().all(is_base64)
        && !rank.is_empty()
        && rank.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognised_by_content() {
        assert!(is_tiktoken(b"IQ== 0\nIg== 1\n"));
        assert!(is_tiktoken(b"IQ== 0\r\nIg== 1\r\n"));
        assert!(!is_tiktoken(b"{\"model\": 1}\n"));
        assert!(!is_tiktoken(b"\n\x0b\n\x05<unk>"));
    }

    #[test]
    fn parses_and_checks_ranks() {
        let t = parse(b"IQ== 0\nIg== 1\naGVsbG8= 2\n").unwrap();
        assert_eq!(
            t.tokens,
            vec![b"!".to_vec(), b"\"".to_vec(), b"hello".to_vec()]
        );
        assert!(parse(b"IQ== 0\nI!== 1\n")
            .unwrap_err()
            .contains("line 2: invalid base64"));
        assert!(parse(b"IQ== 0\nIg== 0\n")
            .unwrap_err()
            .contains("line 2: duplicate rank 0"));
        assert!(parse(b"IQ== 0\nIg== 2\n")
            .unwrap_err()
            .contains("contiguous"));
        assert!(parse(b"IQ== 0\nIQ== 1\n")
            .unwrap_err()
            .contains("already given on line 1"));
        assert_eq!(decode_base64("aGk="), Some(b"hi".to_vec()));
        assert_eq!(decode_base64("aA=="), Some(b"h".to_vec()));
        assert_eq!(decode_base64("aGVs"), Some(b"hel".to_vec()));
    }
}
