//! SentencePiece parsing of hand-built protobufs, other tokenizer formats, and damaged files.

use llq_formats::sentencepiece::{self, Piece, SpmModel};
use llq_types::TokenType;
use std::path::PathBuf;

// ---- a minimal protobuf encoder for building test models ------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    varint(out, (field << 3) | wire_type);
}

fn int_field(out: &mut Vec<u8>, field: u64, value: i64) {
    tag(out, field, 0);
    // int32 negatives go on the wire sign-extended to 64 bits.
    varint(out, value as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    tag(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn float_field(out: &mut Vec<u8>, field: u64, value: f32) {
    tag(out, field, 5);
    out.extend_from_slice(&value.to_le_bytes());
}

/// One unknown field of every wire type the format allows outside groups.
fn unknown_fields(out: &mut Vec<u8>) {
    int_field(out, 1000, 7);
    tag(out, 1001, 1);
    out.extend_from_slice(&[0xab; 8]);
    bytes_field(out, 1002, b"ignored");
    tag(out, 1003, 5);
    out.extend_from_slice(&[0xcd; 4]);
}

fn piece(text: &[u8], score: f32, kind: Option<i64>) -> Vec<u8> {
    let mut p = Vec::new();
    bytes_field(&mut p, 1, text);
    float_field(&mut p, 2, score);
    if let Some(kind) = kind {
        int_field(&mut p, 3, kind);
    }
    p
}

fn trainer_spec() -> Vec<u8> {
    let mut t = Vec::new();
    int_field(&mut t, 3, 2); // BPE
    int_field(&mut t, 4, 4); // vocab_size
    unknown_fields(&mut t);
    int_field(&mut t, 35, 1); // byte_fallback
    int_field(&mut t, 40, 0);
    int_field(&mut t, 41, 1);
    int_field(&mut t, 42, 2);
    int_field(&mut t, 43, -1);
    t
}

/// A 4-piece model with unknown fields everywhere and, optionally, a normalizer spec.
fn small_model(normalizer: Option<&[u8]>) -> Vec<u8> {
    let mut m = Vec::new();
    bytes_field(&mut m, 1, &piece(b"<unk>", 0.0, Some(2)));
    bytes_field(&mut m, 1, &piece(b"<s>", 0.0, Some(3)));
    let mut with_unknown = piece("▁héllo".as_bytes(), -1.5, None);
    unknown_fields(&mut with_unknown);
    bytes_field(&mut m, 1, &with_unknown);
    unknown_fields(&mut m);
    bytes_field(&mut m, 1, &piece(b"<0x0A>", -2.25, Some(6)));
    bytes_field(&mut m, 2, &trainer_spec());
    if let Some(n) = normalizer {
        bytes_field(&mut m, 3, n);
    }
    m
}

fn small_model_expected() -> SpmModel {
    let p = |piece: &str, score, kind| Piece {
        piece: piece.into(),
        score,
        kind,
    };
    SpmModel {
        pieces: vec![
            p("<unk>", 0.0, TokenType::Unknown),
            p("<s>", 0.0, TokenType::Control),
            p("▁héllo", -1.5, TokenType::Normal),
            p("<0x0A>", -2.25, TokenType::Byte),
        ],
        model_type: 2,
        byte_fallback: true,
        unk_id: 0,
        bos_id: 1,
        eos_id: 2,
        pad_id: -1,
        add_dummy_prefix: true,
        remove_extra_whitespaces: true,
    }
}

fn shared_file(rel: &str) -> Option<PathBuf> {
    Some(llq_testsupport::shared()?.join(rel))
}

// ---- well-formed models ---------------------------------------------------------------------

#[test]
fn small_model_without_normalizer_uses_defaults() {
    let model = sentencepiece::parse(&small_model(None)).unwrap();
    assert_eq!(model, small_model_expected());
}

#[test]
fn normalizer_fields_are_read() {
    let mut n = Vec::new();
    bytes_field(&mut n, 1, b"identity");
    unknown_fields(&mut n);
    int_field(&mut n, 3, 0);
    int_field(&mut n, 4, 0);
    let model = sentencepiece::parse(&small_model(Some(&n))).unwrap();
    let expected = SpmModel {
        add_dummy_prefix: false,
        remove_extra_whitespaces: false,
        ..small_model_expected()
    };
    assert_eq!(model, expected);
}

#[test]
fn repeated_trainer_spec_merges() {
    // Protobuf merges a repeated embedded message field by field.
    let mut m = small_model(None);
    let mut more = Vec::new();
    int_field(&mut more, 42, -5);
    bytes_field(&mut m, 2, &more);
    let model = sentencepiece::parse(&m).unwrap();
    assert_eq!(model.eos_id, -5);
    assert_eq!(model.pad_id, -1);
    assert!(model.byte_fallback);
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.model");
    std::fs::write(&path, small_model(None)).unwrap();
    assert_eq!(sentencepiece::load(&path).unwrap(), small_model_expected());

    let mut bad = small_model(None);
    bad.truncate(20);
    std::fs::write(&path, bad).unwrap();
    let err = sentencepiece::load(&path).unwrap_err().to_string();
    assert!(err.starts_with(&path.display().to_string()), "{err}");
    let missing = sentencepiece::load(&dir.path().join("nope.model")).unwrap_err();
    assert!(missing.to_string().contains("nope.model"), "{missing}");
}

// ---- refused inputs -------------------------------------------------------------------------

fn parse_err(bytes: &[u8]) -> String {
    sentencepiece::parse(bytes).expect_err("should be refused")
}

#[test]
fn no_pieces() {
    let mut m = Vec::new();
    bytes_field(&mut m, 2, &trainer_spec());
    assert!(parse_err(&m).contains("no pieces"));
    assert!(parse_err(b"").contains("no pieces"));
}

#[test]
fn invalid_utf8_piece() {
    let mut m = Vec::new();
    bytes_field(&mut m, 1, &piece(b"ok\xff", 0.0, None));
    bytes_field(&mut m, 2, &trainer_spec());
    let err = parse_err(&m);
    assert!(err.contains("piece 0") && err.contains("UTF-8"), "{err}");
}

#[test]
fn empty_piece_and_bad_type() {
    let mut m = Vec::new();
    bytes_field(&mut m, 1, &piece(b"", 0.0, None));
    assert!(parse_err(&m).contains("empty piece"));

    let mut m = Vec::new();
    bytes_field(&mut m, 1, &piece(b"a", 0.0, Some(9)));
    assert!(parse_err(&m).contains("unknown piece type 9"));
}

#[test]
fn groups_and_bad_wire_types() {
    let mut m = small_model(None);
    tag(&mut m, 7, 3);
    assert!(parse_err(&m).contains("groups"));

    let mut m = small_model(None);
    tag(&mut m, 7, 6);
    assert!(parse_err(&m).contains("wire type 6"));

    // A known field with the wrong wire type: score as a varint.
    let mut p = Vec::new();
    bytes_field(&mut p, 1, b"a");
    int_field(&mut p, 2, 1);
    let mut m = Vec::new();
    bytes_field(&mut m, 1, &p);
    assert!(parse_err(&m).contains("wire type mismatch"));
}

#[test]
fn oversized_length_is_refused_without_allocating() {
    // A piece claiming 2^62 bytes must fail on the length check, not try to reserve memory.
    let mut m = Vec::new();
    tag(&mut m, 1, 2);
    varint(&mut m, 1 << 62);
    m.extend_from_slice(b"rest");
    let err = parse_err(&m);
    assert!(err.contains("only 4 remain"), "{err}");
}

#[test]
fn missing_trainer_spec() {
    let mut m = Vec::new();
    bytes_field(&mut m, 1, &piece(b"a", 0.0, None));
    assert!(parse_err(&m).contains("trainer_spec"));
}

// ---- other tokenizer formats ----------------------------------------------------------------

const TIKTOKEN_MESSAGE: &str = "is a tiktoken (Llama 3) tokenizer, not SentencePiece";

#[test]
fn tiktoken_sample_is_recognised() {
    let sample = b"IQ== 0\nIg== 1\nIw== 2\nJA== 3\nIHRoZQ== 279\n";
    assert_eq!(parse_err(sample), TIKTOKEN_MESSAGE);
    // Cut mid-line, as a reader looking only at the head of a large file would see it.
    assert_eq!(parse_err(&sample[..17]), TIKTOKEN_MESSAGE);
}

#[test]
fn llama3_tokenizer_is_recognised() {
    let Some(path) = shared_file("tokenizers/llama3/tokenizer.model") else {
        return;
    };
    let err = sentencepiece::load(&path).unwrap_err().to_string();
    assert!(err.ends_with(TIKTOKEN_MESSAGE), "{err}");
    assert!(err.contains("llama3"), "{err}");
}

#[test]
fn json_tokenizer_is_not_sentencepiece() {
    let json = br#"{"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}}"#;
    let err = parse_err(json);
    assert!(err.starts_with("not a SentencePiece model"), "{err}");
}

// ---- damaged files --------------------------------------------------------------------------

/// Every prefix that parses must still hold every piece and the same trainer settings: a cut
/// may only lose trailing normalizer fields, never pieces or special ids.
fn check_truncations(full: &[u8], cuts: impl Iterator<Item = usize>) {
    let whole = sentencepiece::parse(full).unwrap();
    let mut refused = 0;
    for cut in cuts {
        match sentencepiece::parse(&full[..cut]) {
            Err(_) => refused += 1,
            Ok(m) => {
                let same_trainer = SpmModel {
                    add_dummy_prefix: whole.add_dummy_prefix,
                    remove_extra_whitespaces: whole.remove_extra_whitespaces,
                    ..m
                };
                assert_eq!(
                    same_trainer, whole,
                    "cut at {cut} lost pieces or trainer fields"
                );
            }
        }
    }
    assert!(refused > 0);
}

#[test]
fn truncated_small_model_never_panics() {
    let mut n = Vec::new();
    int_field(&mut n, 3, 0);
    int_field(&mut n, 4, 0);
    let full = small_model(Some(&n));
    check_truncations(&full, 0..full.len());
}

#[test]
fn truncated_llama2_never_panics() {
    let Some(path) = shared_file("tokenizers/llama2/tokenizer.model") else {
        return;
    };
    let full = std::fs::read(path).unwrap();
    // Every byte of the head and of the tail (the trainer and normalizer specs are the last
    // ~300 bytes) plus a spread through the pieces; each cut costs a full parse.
    let len = full.len();
    let head = 0..1000;
    let tail = len.saturating_sub(400)..len;
    let middle = (0..len).step_by(4999);
    check_truncations(&full, head.chain(middle).chain(tail));
}

#[test]
fn garbled_llama2_never_panics() {
    let Some(path) = shared_file("tokenizers/llama2/tokenizer.model") else {
        return;
    };
    let full = std::fs::read(path).unwrap();
    // Overwrite single bytes with values that change wire types, lengths and continuation bits.
    for pos in (0..full.len())
        .step_by(9973)
        .chain(full.len() - 300..full.len())
    {
        for value in [0x00, 0x80, 0xff] {
            let mut bytes = full.clone();
            bytes[pos] = value;
            let _ = sentencepiece::parse(&bytes);
        }
    }
}
