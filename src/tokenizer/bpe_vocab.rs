//! Byte-level BPE vocabularies (Llama 3) as llama.cpp's "gpt2" tokenizer reads them: tokens
//! spelled with GPT-2's byte-to-unicode alphabet, merges `"left right"` in priority order, and
//! Meta's 256 special tokens as control tokens.
//!
//! A tiktoken file holds only ranks; merges are recovered from them the way Hugging Face's
//! tiktoken conversion does: every split of a token into two tokens becomes a merge with the
//! token's rank, so that merge order follows the merged token's rank (tiktoken merges the
//! adjacent pair whose concatenation has the lowest rank, and a byte-level BPE that applies
//! merges in this order makes the same choices).
//!
//! A Hugging Face `tokenizer.json` already holds tokens in GPT-2 spelling and its merges; it is
//! accepted only when its pre-tokenizer is Llama 3's, the one llq's runtime and llama.cpp's
//! "llama-bpe" implement.

use super::gpt2::{byte_to_unicode, bytes_to_gpt2, LLAMA3_PATTERN};
use super::specials::looks_special;
use llq_formats::tiktoken::TiktokenRanks;
use llq_formats::tokenizer_json::{PreStep, SplitPattern, TokenizerJson};
use llq_types::TokenType;
use std::collections::{HashMap, HashSet};

/// Meta's Llama 3 special tokens come after the ranks: this many of them.
pub const N_SPECIAL: usize = 256;

#[derive(Clone, Debug)]
pub struct BpeVocab {
    /// Token strings in GPT-2's byte-to-unicode spelling (specials as their names).
    pub tokens: Vec<String>,
    pub types: Vec<TokenType>,
    pub merges: Vec<String>,
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
        let mut types = vec![TokenType::Normal; n];
        types.extend(std::iter::repeat_n(TokenType::Control, N_SPECIAL));
        Ok(BpeVocab {
            tokens,
            types,
            merges,
        })
    }
}

impl BpeVocab {
    /// The GGUF vocabulary of a Hugging Face `tokenizer.json`: `model.vocab` plus the added
    /// tokens (special or special-looking ones as control tokens, as llama.cpp's converter
    /// types them), its merges as given; `n_vocab` is the embedding's row count.
    pub fn from_tokenizer_json(tj: &TokenizerJson, n_vocab: usize) -> Result<BpeVocab, String> {
        check_llama3_pre_tokenizer(tj)?;
        // `ignore_merges` is not consulted: "llama-bpe" always takes a piece that is a whole
        // token as that token, as tiktoken (Meta's reference) does.
        let n = tj
            .added_tokens
            .iter()
            .map(|t| t.id as usize + 1)
            .fold(tj.vocab.len(), usize::max);
        // Also keeps a huge stray id from sizing the table below.
        if n > tj.vocab.len() + tj.added_tokens.len() {
            return Err(format!(
                "token ids are not contiguous: {} vocab and {} added tokens but ids up to {}",
                tj.vocab.len(),
                tj.added_tokens.len(),
                n - 1
            ));
        }
        let mut slots: Vec<Option<(String, TokenType)>> = tj
            .vocab
            .iter()
            .map(|t| Some((t.clone(), TokenType::Normal)))
            .collect();
        slots.resize(n, None);
        let mut added = HashSet::new();
        for t in &tj.added_tokens {
            if !added.insert(t.id) {
                return Err(format!("added token id {} is given twice", t.id));
            }
            let ty = if t.special || looks_special(&t.content) {
                TokenType::Control
            } else {
                TokenType::UserDefined
            };
            // An added token may restate a vocab entry; its own text and kind win.
            slots[t.id as usize] = Some((t.content.clone(), ty));
        }
        if let Some(gap) = slots.iter().position(Option::is_none) {
            return Err(format!(
                "token ids are not contiguous: {n} ids but no token has id {gap}"
            ));
        }
        let (tokens, types): (Vec<String>, Vec<TokenType>) = slots.into_iter().flatten().unzip();
        if n != n_vocab {
            return Err(format!(
                "tokenizer has {n} tokens but the embedding has {n_vocab} rows"
            ));
        }
        let normal: HashSet<&str> = tj.vocab.iter().map(String::as_str).collect();
        for (b, c) in byte_to_unicode().iter().enumerate() {
            if !normal.contains(c.to_string().as_str()) {
                return Err(format!(
                    "model.vocab lacks the one-byte token {b:#04x}: not a byte-level BPE"
                ));
            }
        }
        let mut merges = Vec::with_capacity(tj.merges.len());
        for (i, (l, r)) in tj.merges.iter().enumerate() {
            // GGUF stores a merge as "left right": a space inside a side would be ambiguous.
            let known = |s: &str| !s.contains(' ') && normal.contains(s);
            if !known(l) || !known(r) || !normal.contains(format!("{l}{r}").as_str()) {
                return Err(format!(
                    "model.merges[{i}] ({l:?}, {r:?}) does not join two tokens into a token"
                ));
            }
            merges.push(format!("{l} {r}"));
        }
        Ok(BpeVocab {
            tokens,
            types,
            merges,
        })
    }
}

/// The pre-tokenization must be Llama 3's: no normalizer, a `Split` on Llama 3's pattern
/// keeping each match as a piece, then `ByteLevel` without a pattern of its own.
fn check_llama3_pre_tokenizer(tj: &TokenizerJson) -> Result<(), String> {
    if let Some(n) = &tj.normalizer {
        return Err(format!(
            "normalizer {n:?} is not supported (Llama 3's byte-level BPE has none)"
        ));
    }
    let llama3 = match tj.pre_tokenizer.as_slice() {
        [PreStep::Split {
            pattern: SplitPattern::Regex(p),
            behavior,
            invert: false,
        }, PreStep::ByteLevel { use_regex: false }] => {
            if p != LLAMA3_PATTERN {
                return Err(format!(
                    "pre-tokenizer pattern {p:?} is not supported: llq converts only Llama 3's \
                     byte-level BPE (\"llama-bpe\"), whose pattern is {:?}",
                    LLAMA3_PATTERN
                ));
            }
            behavior == "Isolated"
        }
        _ => false,
    };
    if !llama3 {
        return Err(format!(
            "pre-tokenizer {:?} is not supported: llq converts only Llama 3's byte-level BPE \
             (\"llama-bpe\": an isolating Split on Llama 3's pattern, then ByteLevel)",
            tj.pre_tokenizer
        ));
    }
    Ok(())
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
        assert_eq!(v.tokens[259], "<|begin_of_text|>");
        assert!(BpeVocab::from_tiktoken(&TiktokenRanks { tokens: vec![] }, 5).is_err());
    }

    fn tiny_json() -> TokenizerJson {
        let table = byte_to_unicode();
        let mut vocab: Vec<String> = table.iter().map(|c| c.to_string()).collect();
        vocab.extend(["ab", "Ġa"].map(String::from));
        let added = |id, content: &str, special| llq_formats::tokenizer_json::AddedToken {
            id,
            content: content.into(),
            special,
        };
        TokenizerJson {
            vocab,
            merges: vec![("a".into(), "b".into()), ("Ġ".into(), "a".into())],
            ignore_merges: true,
            added_tokens: vec![
                added(258, "<|begin_of_text|>", true),
                added(259, "<|eot_id|>", false),
                added(260, "hello world", false),
            ],
            normalizer: None,
            pre_tokenizer: vec![
                PreStep::Split {
                    pattern: SplitPattern::Regex(LLAMA3_PATTERN.into()),
                    behavior: "Isolated".into(),
                    invert: false,
                },
                PreStep::ByteLevel { use_regex: false },
            ],
            template_ends: None,
        }
    }

    #[test]
    fn tokenizer_json_vocab() {
        let tj = tiny_json();
        let v = BpeVocab::from_tokenizer_json(&tj, 261).unwrap();
        assert_eq!(v.tokens.len(), 261);
        assert_eq!(v.tokens[256], "ab");
        assert_eq!(v.tokens[260], "hello world");
        // <|eot_id|> is not marked special but looks it, as llama.cpp's converter decides.
        assert_eq!(
            v.types[255..].iter().map(|t| t.id()).collect::<Vec<_>>(),
            [1, 1, 1, 3, 3, 4]
        );
        assert_eq!(v.merges, ["a b", "Ġ a"]);
        // The runtime accepts the result.
        let printable: Vec<bool> = v.types.iter().map(|&t| t != TokenType::Control).collect();
        super::super::bpe::Bpe::new(&v.tokens, &printable, &v.merges).unwrap();

        // An added token may restate a vocab id.
        let mut tj = tiny_json();
        tj.vocab.push("<|eot_id|>".into());
        tj.added_tokens[1].id = 258;
        tj.added_tokens[0].id = 259;
        tj.added_tokens.pop();
        let v = BpeVocab::from_tokenizer_json(&tj, 260).unwrap();
        assert_eq!(v.tokens[258], "<|eot_id|>");
        assert_eq!(v.types[258], TokenType::Control);
    }

    #[test]
    fn tokenizer_json_refusals() {
        let conv = |tj: &TokenizerJson, n| BpeVocab::from_tokenizer_json(tj, n).unwrap_err();
        let tj = tiny_json();
        assert!(conv(&tj, 300).contains("tokenizer has 261 tokens but the embedding has 300 rows"));
        let mut gap = tiny_json();
        gap.added_tokens[0].id = 0;
        assert!(conv(&gap, 261).contains("no token has id 258"));
        gap.added_tokens[2].id = u32::MAX;
        assert!(conv(&gap, 261).contains("not contiguous"));
        let mut twice = tiny_json();
        twice.added_tokens[2].id = 259;
        assert!(conv(&twice, 261).contains("given twice"));
        let mut regex = tiny_json();
        regex.pre_tokenizer[0] = PreStep::Split {
            pattern: SplitPattern::Regex(r"\s+|\w+".into()),
            behavior: "Isolated".into(),
            invert: false,
        };
        assert!(conv(&regex, 261).contains("pattern \"\\\\s+|\\\\w+\" is not supported"));
        let mut gpt2 = tiny_json();
        gpt2.pre_tokenizer = vec![PreStep::ByteLevel { use_regex: true }];
        assert!(conv(&gpt2, 261).contains("is not supported"));
        let mut nfc = tiny_json();
        nfc.normalizer = Some("NFC".into());
        assert!(conv(&nfc, 261).contains("normalizer \"NFC\""));
        let mut merge = tiny_json();
        merge.merges.push(("b".into(), "a".into()));
        assert!(conv(&merge, 261).contains("model.merges[2]"));
    }
}
