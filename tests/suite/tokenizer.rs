//! The runtime's SentencePiece tokenizer against the references, on every line of the
//! WikiText-2 test corpus: the `sentencepiece` library and llama.cpp (llama-cpp-python,
//! `vocab_only`), for the fixture's 512-piece vocabulary (through a GGUF written by
//! `llq convert`) and for the real Llama 2 vocabulary (from `tokenizer.model` and from a GGUF
//! written by llama.cpp's tool chain). Then `llq tokenize` and its errors.
//!
//! sentencepiece and llama.cpp agree on these vocabularies: both use the identity normalizer,
//! keep repeated and leading spaces (the dummy prefix is added before them, so a line starting
//! with a space begins with "▁▁"), and fall back to byte pieces.

use crate::common::{fixture, llq_fails, llq_ok, python, run_py, s, shared};
use llq::Tokenizer;
use llq_formats::gguf::{GgufFile, GgufWriter, Value};
use std::path::{Path, PathBuf};

/// Lines that are not in WikiText but are easy to get wrong.
const EDGE_CASES: &[&str] = &[
    "",
    " ",
    "  ",
    "   leading",
    "trailing   ",
    "a\tb",
    "tab\t\tend\t",
    // Control and byte pieces' texts are plain text without parse_special.
    "<s>",
    "</s>",
    "<unk>",
    "a<s>b</s>",
    "<0x41>",
    "<0x0A>x",
    "ｈｅｌｌｏ",
    "中文字符测试",
    "😀👍🏽 family 👨‍👩‍👧",
    "e\u{301} café",
    "\u{a0}nbsp\u{3000}ideo",
    "x\u{0}y",
    // A literal ▁ reads back as a space (in sentencepiece too): not round-trip checked.
    "\u{2581} literal ▁▁ marks",
    "it's 3.14159 — “quoted” …",
    "Ünïcödé ñ ß ø",
    "\u{10FFFF}\u{FFFD}",
];

/// The corpus, then the edge cases, as one file in `dir`.
fn corpus(shared: &Path, dir: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(shared.join("corpus/wikitext-2-test.txt")).unwrap();
    assert!(text.ends_with('\n'));
    text += &EDGE_CASES.join("\n");
    text += &format!("\n{}\n{}\n", "a".repeat(300), "ab ".repeat(100));
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    path
}

/// Lines as `llq tokenize -f` and `spm_encode.py` split them.
fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read corpus");
    text.lines().map(str::to_string).collect()
}

/// The fixture converted to GGUF by llq, in `dir`.
fn fixture_gguf(dir: &Path) -> PathBuf {
    let out = dir.join("tiny.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&out),
        "--type",
        "f16",
        "--quiet",
    ]);
    out
}

struct Reference {
    ids: Vec<Vec<u32>>,
    decoded: Vec<String>,
}

fn reference(python: &Path, backend: &str, model: &Path, text: &Path, extra: &[&str]) -> Reference {
    let mut args = vec![backend, s(model), s(text)];
    args.extend_from_slice(extra);
    let out = run_py(python, "spm_encode.py", &args);
    let v: serde_json::Value = serde_json::from_str(&out).expect("spm_encode.py JSON");
    Reference {
        ids: serde_json::from_value(v["ids"].clone()).expect("ids"),
        decoded: serde_json::from_value(v["decoded"].clone()).expect("decoded"),
    }
}

/// Compare per line; on mismatch, fail listing the count and the first few lines in full.
fn assert_same_ids(what: &str, lines: &[String], ours: &[Vec<u32>], theirs: &[Vec<u32>]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: line counts differ");
    let bad: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect();
    if bad.is_empty() {
        return;
    }
    let mut msg = format!("{what}: {} of {} lines differ", bad.len(), ours.len());
    for &i in bad.iter().take(5) {
        let at = ours[i]
            .iter()
            .zip(&theirs[i])
            .position(|(a, b)| a != b)
            .unwrap_or(ours[i].len().min(theirs[i].len()));
        // A window around the first difference keeps the message readable.
        let window = |v: &[u32]| v[at.saturating_sub(3)..(at + 6).min(v.len())].to_vec();
        let text: String = lines[i].chars().take(160).collect();
        msg += &format!(
            "\n line {} ({} chars) {text:?}\n  first difference at id #{at} of {} / {}\n  \
             llq:       …{:?}…\n  reference: …{:?}…",
            i + 1,
            lines[i].chars().count(),
            ours[i].len(),
            theirs[i].len(),
            window(&ours[i]),
            window(&theirs[i]),
        );
    }
    panic!("{msg}");
}

/// decode(ids) equals the reference decode, and gives the line back (unless it holds a "▁").
fn assert_decodes(what: &str, tok: &Tokenizer, lines: &[String], ids: &[Vec<u32>], sp: &[String]) {
    let mut bad = Vec::new();
    for (i, (line, ids)) in lines.iter().zip(ids).enumerate() {
        let text = tok.decode(ids);
        if text != sp[i] || (text != *line && !line.contains('\u{2581}')) {
            bad.push(format!(
                "line {}: {line:?}\n  llq decode: {text:?}\n  sentencepiece decode: {:?}",
                i + 1,
                sp[i]
            ));
        }
        // The streaming decoder, fed one id at a time, gives the same text.
        let mut d = tok.decoder();
        let mut streamed: String = ids.iter().map(|&id| d.push(id)).collect();
        streamed += &d.finish();
        assert_eq!(streamed, text, "{what}: streamed decode of line {}", i + 1);
    }
    assert!(
        bad.is_empty(),
        "{what}: {} lines decode differently:\n{}",
        bad.len(),
        bad[..bad.len().min(5)].join("\n")
    );
}

fn encode_all(tok: &Tokenizer, lines: &[String], add_bos: bool) -> Vec<Vec<u32>> {
    lines.iter().map(|l| tok.encode(l, add_bos)).collect()
}

#[test]
fn fixture_vocab_matches_sentencepiece_and_llama_cpp_on_corpus() {
    let (Some(py), Some(shared)) = (python(), shared()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture_gguf(dir.path());
    let tok = Tokenizer::from_gguf(&GgufFile::open(&gguf).unwrap()).unwrap();
    assert_eq!((tok.n_vocab(), tok.bos(), tok.eos()), (512, 1, 2));
    let corpus = corpus(&shared, dir.path());
    let lines = lines(&corpus);
    let ours = encode_all(&tok, &lines, true);

    let sp = reference(&py, "spm", &fixture("meta/tokenizer.model"), &corpus, &[]);
    assert_same_ids("fixture vs sentencepiece", &lines, &ours, &sp.ids);
    let lc = reference(&py, "llama", &gguf, &corpus, &[]);
    assert_same_ids("fixture vs llama.cpp", &lines, &ours, &lc.ids);
    assert_decodes("fixture", &tok, &lines, &ours, &sp.decoded);

    // Without BOS too (from the SentencePiece model directly: the same constructor core).
    let spm = llq_formats::sentencepiece::load(&fixture("meta/tokenizer.model")).unwrap();
    let from_spm = Tokenizer::from_spm(&spm).unwrap();
    let sp = reference(
        &py,
        "spm",
        &fixture("meta/tokenizer.model"),
        &corpus,
        &["--no-bos"],
    );
    let ours = encode_all(&from_spm, &lines, false);
    assert_same_ids("fixture (no BOS) vs sentencepiece", &lines, &ours, &sp.ids);
}

#[test]
fn llama2_vocab_matches_sentencepiece_and_llama_cpp_on_corpus() {
    let (Some(py), Some(shared)) = (python(), shared()) else {
        return;
    };
    let model = shared.join("tokenizers/llama2/tokenizer.model");
    let spm = llq_formats::sentencepiece::load(&model).unwrap();
    let tok = Tokenizer::from_spm(&spm).unwrap();
    assert_eq!((tok.n_vocab(), tok.bos(), tok.eos()), (32000, 1, 2));
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus(&shared, dir.path());
    let lines = lines(&corpus);
    let ours = encode_all(&tok, &lines, true);

    let sp = reference(&py, "spm", &model, &corpus, &[]);
    assert_same_ids("llama2 vs sentencepiece", &lines, &ours, &sp.ids);
    assert_decodes("llama2", &tok, &lines, &ours, &sp.decoded);

    // The same vocabulary in a GGUF written by llama.cpp's tool chain, read by from_gguf,
    // against llama.cpp itself.
    let gguf = shared.join("gguf/llama-2-tiny-random.gguf");
    let from_gguf = Tokenizer::from_gguf(&GgufFile::open(&gguf).unwrap()).unwrap();
    let ours_gguf = encode_all(&from_gguf, &lines, true);
    assert_same_ids("llama2 GGUF vs tokenizer.model", &lines, &ours_gguf, &ours);
    let lc = reference(&py, "llama", &gguf, &corpus, &[]);
    assert_same_ids("llama2 vs llama.cpp", &lines, &ours_gguf, &lc.ids);

    // The whole file as one text (what perplexity tokenizes): CR/LF become byte pieces.
    let whole = std::fs::read_to_string(&corpus).unwrap();
    let sp = reference(&py, "spm", &model, &corpus, &["--whole"]);
    let ours = vec![tok.encode(&whole, true)];
    assert_same_ids(
        "llama2 whole corpus vs sentencepiece",
        std::slice::from_ref(&whole),
        &ours,
        &sp.ids,
    );
    assert_eq!(tok.decode(&ours[0]), sp.decoded[0]);
}

#[test]
fn tokenize_command_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = fixture_gguf(dir.path());
    // The fixture's reference sentences with their sentencepiece ids (no BOS).
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("reference/tokens.json")).unwrap())
            .unwrap();
    let sentences = reference["sentences"].as_array().unwrap();
    let texts: Vec<&str> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    let ids: Vec<Vec<u32>> = sentences
        .iter()
        .map(|s| serde_json::from_value(s["ids"].clone()).unwrap())
        .collect();
    // One sentence holds a line break: it goes through -p (one input, newline and all).
    let (multi, single): (Vec<usize>, Vec<usize>) =
        (0..texts.len()).partition(|&i| texts[i].contains('\n'));
    assert!(!multi.is_empty() && single.len() >= 2);
    // A file with CRLF and LF endings, and an empty line.
    let text = format!(
        "{}\r\n\n{}\n",
        texts[single[0]],
        single[1..]
            .iter()
            .map(|&i| texts[i])
            .collect::<Vec<_>>()
            .join("\n")
    );
    let file = dir.path().join("text.txt");
    std::fs::write(&file, text).unwrap();
    let mut expected: Vec<Vec<u32>> = vec![ids[single[0]].clone(), vec![]];
    expected.extend(single[1..].iter().map(|&i| ids[i].clone()));

    let with_bos = |v: &Vec<u32>| [vec![1], v.clone()].concat();
    let out = llq_ok(&["tokenize", s(&gguf), "-f", s(&file)]);
    let got: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(got, expected.iter().map(with_bos).collect::<Vec<_>>());

    let out = llq_ok(&["tokenize", s(&gguf), "-f", s(&file), "--json", "--no-bos"]);
    let got: Vec<Vec<u32>> = serde_json::from_str(&out).unwrap();
    assert_eq!(got, expected);

    let out = llq_ok(&["tokenize", s(&gguf), "-p", texts[multi[0]], "--json"]);
    let got: Vec<Vec<u32>> = serde_json::from_str(&out).unwrap();
    assert_eq!(got, vec![with_bos(&ids[multi[0]])]);
    // An empty line with --no-bos prints an empty line.
    assert_eq!(llq_ok(&["tokenize", s(&gguf), "-p", "", "--no-bos"]), "\n");
}

/// A GGUF holding only the given key/values.
fn metadata_only_gguf(path: &Path, kvs: &[(&str, Value)]) {
    let kvs: Vec<(String, Value)> = kvs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let file = std::fs::File::create(path).unwrap();
    GgufWriter::new(file, &kvs, &[]).unwrap().finish().unwrap();
}

#[test]
fn tokenize_command_follows_add_bos_and_add_eos() {
    let dir = tempfile::tempdir().unwrap();
    let spm = llq_formats::sentencepiece::load(&fixture("meta/tokenizer.model")).unwrap();
    let mut kvs = llq::sentencepiece_keys(&spm);
    for (k, v) in kvs.iter_mut() {
        match k.as_str() {
            "tokenizer.ggml.add_bos_token" => *v = Value::Bool(false),
            "tokenizer.ggml.add_eos_token" => *v = Value::Bool(true),
            _ => {}
        }
    }
    let gguf = dir.path().join("eos.gguf");
    let kvs: Vec<(&str, Value)> = kvs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    metadata_only_gguf(&gguf, &kvs);
    // "Hello" is ▁H el l o in the fixture vocabulary.
    assert_eq!(
        llq_ok(&["tokenize", s(&gguf), "-p", "Hello"]),
        "345 332 438 433 2\n"
    );
    assert_eq!(
        llq_ok(&["tokenize", s(&gguf), "-p", "Hello", "--no-bos"]),
        "345 332 438 433\n"
    );
}

fn fails_with(args: &[&str], needle: &str) {
    let out = llq_fails(args, needle);
    assert!(out.stdout.is_empty(), "llq {args:?} printed ids on failure");
}

#[test]
fn tokenize_command_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let missing = d("missing.gguf");
    fails_with(&["tokenize", s(&missing), "-p", "x"], "missing.gguf");

    let gpt2 = d("gpt2.gguf");
    metadata_only_gguf(
        &gpt2,
        &[("tokenizer.ggml.model", Value::String("gpt2".into()))],
    );
    fails_with(
        &["tokenize", s(&gpt2), "-p", "x"],
        "tokenizer.ggml.merges missing",
    );
    let none = d("none.gguf");
    metadata_only_gguf(
        &none,
        &[("general.architecture", Value::String("llama".into()))],
    );
    fails_with(&["tokenize", s(&none), "-p", "x"], "tokenizer.ggml.model");

    let gguf = fixture_gguf(dir.path());
    fails_with(&["tokenize", s(&gguf), "-f", s(&d("no.txt"))], "no.txt");
    let binary = d("binary.txt");
    std::fs::write(&binary, b"ok\n\xff\xfe\n").unwrap();
    fails_with(&["tokenize", s(&gguf), "-f", s(&binary)], "not UTF-8");
    // Neither -f nor -p, or both: usage errors.
    fails_with(&["tokenize", s(&gguf)], "--file");
    fails_with(
        &["tokenize", s(&gguf), "-p", "x", "-f", s(&binary)],
        "cannot be used with",
    );
}
