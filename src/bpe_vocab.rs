//! Byte-level BPE vocabularies (Llama 3) as llama.cpp's "gpt2" tokenizer reads them: tokens
//! spelled with GPT-2's byte-to-unicode alphabet, merges `"left right"` in priority order, and
//! Meta's 256 special tokens as control tokens.
//!
//! A tiktoken file holds only ranks; merges are recovered from them the way Hugging Face's
//! tiktoken conversion does: every split of a token into two tokens becomes a merge with the
//! token's rank, so that merge order follows the merged token's rank (tiktoken merges the
//! adjacent pair whose concatenation has the lowest rank, and a byte-level BPE that applies
//! merges in this order makes the same choices).

use llq_formats::tiktoken::TiktokenRanks;
use std::collections::HashMap;

/// Meta's Llama 3 special tokens come after the ranks: this many of them.
pub const N_SPECIAL: usize = 256;

/// GGUF token types.
pub const TYPE_NORMAL: i32 = 1;
pub const TYPE_CONTROL: i32 = 3;

#[derive(Clone, Debug)]
pub struct BpeVocab {
    /// Token strings in GPT-2's byte-to-unicode spelling (specials as their names).
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    pub merges: Vec<String>,
    pub bos: u32,
    pub eos: u32,
    pub eot: Option<u32>,
}

/// GPT-2's byte → printable character table: printable Latin-1 bytes stand for themselves,
/// the others (controls, space, …) take the code points from 256 up, in byte order.
pub fn byte_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let cp = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(cp).expect("valid code point");
    }
    table
}

/// A byte string in GPT-2's spelling.
pub fn bytes_to_gpt2(table: &[char; 256], bytes: &[u8]) -> String {
    bytes.iter().map(|&b| table[b as usize]).collect()
}

/// The names of Meta's Llama 3 / 3.1 special tokens, ids 128000 + i.
pub fn llama3_special_names() -> Vec<String> {
    let named = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>",
        "<|reserved_special_token_2|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
    ];
    let mut out: Vec<String> = named.iter().map(|s| s.to_string()).collect();
    let mut k = 3;
    while out.len() < N_SPECIAL {
        out.push(format!("<|reserved_special_token_{k}|>"));
        k += 1;
    }
    out
}

impl BpeVocab {
    /// The GGUF vocabulary of a Llama 3 tiktoken file: its ranks, then Meta's 256 specials.
    /// `n_vocab` is the embedding's row count, which must equal that total.
    pub fn from_tiktoken(ranks: &TiktokenRanks, n_vocab: usize) -> Result<BpeVocab, String> {
        let n = ranks.tokens.len();
        if n + N_SPECIAL != n_vocab {
            return Err(format!(
                "tiktoken tokenizer has {n} tokens + {N_SPECIAL} special tokens = {} but the embedding has \
                 {n_vocab} rows",
                n + N_SPECIAL
            ));
        }
        let table = byte_to_unicode();
        let rank_of: HashMap<&[u8], usize> = ranks
            .tokens
            .iter()
            .enumerate()
            .map(|(r, t)| (t.as_slice(), r))
            .collect();
        for b in 0..=255u8 {
            if !rank_of.contains_key([b].as_slice()) {
                return Err(format!(
                    "tokenizer lacks the one-byte token {b:#04x}: not a byte-level BPE"
                ));
            }
        }
        let mut merges = Vec::new();
        for token in &ranks.tokens {
            if token.len() < 2 {
                continue;
            }
            let mut local: Vec<(usize, usize, usize)> = (1..token.len())
                .filter_map(|i| {
                    let l = *rank_of.get(&token[..i])?;
                    let r = *rank_of.get(&token[i..])?;
                    Some((l, r, i))
                })
                .collect();
            local.sort();
            for (_, _, i) in local {
                merges.push(format!(
                    "{} {}",
                    bytes_to_gpt2(&table, &token[..i]),
                    bytes_to_gpt2(&table, &token[i..])
                ));
            }
        }
        let mut tokens: Vec<String> = ranks
            .tokens
            .iter()
            .map(|t| bytes_to_gpt2(&table, t))
            .collect();
        tokens.extend(llama3_special_names());
        let mut types = vec![TYPE_NORMAL; n];
        types.extend(std::iter::repeat_n(TYPE_CONTROL, N_SPECIAL));
        let id = |name: &str| tokens.iter().rposition(|t| t == name).map(|i| i as u32);
        let bos = id("<|begin_of_text|>").expect("special names");
        let eos = id("<|end_of_text|>").expect("special names");
        let eot = id("<|eot_id|>");
        Ok(BpeVocab {
            tokens,
            types,
            merges,
            bos,
            eos,
            eot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_alphabet() {
        let t = byte_to_unicode();
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(llama3_special_names()[9], "<|eot_id|>");
        assert_eq!(
            llama3_special_names()[255],
            "<|reserved_special_token_247|>"
        );
    }

    #[test]
    fn merges_follow_ranks() {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        tokens.push(b"ab".to_vec());
        tokens.push(b"abc".to_vec());
        tokens.push(b"bc".to_vec());
        let v = BpeVocab::from_tiktoken(&TiktokenRanks { tokens }, 259 + 256).unwrap();
        assert_eq!(v.merges, vec!["a b", "a bc", "ab c", "b c"]);
        assert_eq!(v.bos, 259);
        assert!(BpeVocab::from_tiktoken(&TiktokenRanks { tokens: vec![] }, 5).is_err());
    }
}
