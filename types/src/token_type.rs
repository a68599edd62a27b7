//! Token types: the same numbers in SentencePiece models (`ModelProto.SentencePiece.Type`) and in
//! GGUF's `tokenizer.ggml.token_type` array.

/// What kind of token a vocabulary entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

impl TokenType {
    /// The type with this number, or `None` outside 1..=6.
    pub fn from_id(id: i64) -> Option<TokenType> {
        Some(match id {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }

    /// The number stored in files.
    pub fn id(self) -> i32 {
        self as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for id in 1..=6 {
            assert_eq!(TokenType::from_id(id).map(|t| t.id() as i64), Some(id));
        }
        assert_eq!(TokenType::from_id(0), None);
        assert_eq!(TokenType::from_id(7), None);
    }
}
