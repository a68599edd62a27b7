//! The conventions of GPT-2-style byte-level BPE that both the vocabulary builder and the
//! encoder use: bytes spelled as printable characters, and Llama 3's pre-split pattern.

/// Meta's Llama 3 pre-split pattern (also llama.cpp's "llama-bpe").
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

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
