//! Llama 3 (tiktoken tokenizer.model → byte-level BPE "gpt2" vocabulary): conversion, the
//! runtime tokenizer against tiktoken and llama.cpp on every corpus line, and bad input.
//!
//! The model folders are written by `tests/py/llama3_fixture.py` (random weights, numpy only):
//! with the real Llama 3 tokenizer from LLQ_SHARED for the corpus test, with a small tiktoken
//! file written here for the error tests.

use crate::common::{llama_cpp_logits, llq_fails, llq_ok, max_abs_diff, python, run_py, s, shared};
use llq::Tokenizer;
use llq_formats::gguf::{GgufFile, Value};
use std::path::{Path, PathBuf};

const EDGE_CASES: &[&str] = &[
    "",
    " ",
    "  ",
    "   leading",
    "trailing   ",
    "a\tb",
    "tab\t\tend\t",
    "<|begin_of_text|>",
    "a<|eot_id|>b",
    "ｈｅｌｌｏ",
    "中文字符测试",
    "😀👍🏽 family 👨‍👩‍👧",
    "e\u{301} café",
    "\u{a0}nbsp\u{3000}ideo",
    "x\u{0}y",
    "it's IT'S We'LL 3.14159 12345678 — “quoted” …",
    "Ünïcödé ñ ß ø ſ",
    "\u{10FFFF}\u{FFFD}",
    "a\r\rb",
];

fn corpus(shared: &Path, dir: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(shared.join("corpus/wikitext-2-test.txt")).unwrap();
    text += &EDGE_CASES.join("\n");
    text += &format!(
        "\n{}\n{}\n{}\n",
        "a".repeat(300),
        "ab ".repeat(100),
        " ".repeat(50)
    );
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    path
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(str::to_string).collect()
}

fn ids_of(json: &str) -> (Vec<Vec<u32>>, Vec<String>) {
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON");
    let ids = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect();
    let decoded = v["decoded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    (ids, decoded)
}

fn assert_same(what: &str, lines: &[String], ours: &[Vec<u32>], theirs: &[Vec<u32>]) {
    assert_eq!(ours.len(), theirs.len(), "{what}: line counts");
    let bad: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect();
    if let Some(&i) = bad.first() {
        panic!(
            "{what}: {} of {} lines differ; first line {}: {:?}\n ours   {:?}\n theirs {:?}",
            bad.len(),
            ours.len(),
            i + 1,
            lines[i],
            ours[i],
            theirs[i]
        );
    }
}

/// A model folder with the fixture's random weights and `tokenizer`.
fn model_dir(py: &Path, dir: &Path, tokenizer: &Path) -> PathBuf {
    let out = dir.join("hf");
    run_py(py, "llama3_fixture.py", &[s(&out), s(tokenizer)]);
    out
}

#[test]
fn llama3_vocab_matches_tiktoken_and_llama_cpp_on_corpus() {
    let (Some(py), Some(shared)) = (python(), shared()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = shared.join("tokenizers/llama3/tokenizer.model");
    let hf = model_dir(&py, dir.path(), &tokenizer);
    let gguf = dir.path().join("l3.gguf");
    llq_ok(&["convert", s(&hf), "-o", s(&gguf), "--type", "f16"]);

    let file = GgufFile::open(&gguf).unwrap();
    let str_of = |k: &str| file.get(k).and_then(Value::as_str).map(str::to_string);
    assert_eq!(str_of("tokenizer.ggml.model").as_deref(), Some("gpt2"));
    assert_eq!(str_of("tokenizer.ggml.pre").as_deref(), Some("llama-bpe"));
    let id = |k: &str| file.get(k).and_then(Value::as_u64);
    assert_eq!(id("tokenizer.ggml.bos_token_id"), Some(128000));
    assert_eq!(id("tokenizer.ggml.eos_token_id"), Some(128001));
    assert_eq!(id("tokenizer.ggml.eot_token_id"), Some(128009));

    let tok = Tokenizer::from_gguf(&file).unwrap();
    assert_eq!(tok.n_vocab(), 128256);
    assert_eq!(tok.piece(128009), Some("<|eot_id|>"));
    assert!(tok.is_eog(128009) && tok.is_eog(128001));
    let corpus = corpus(&shared, dir.path());
    let lines = lines(&corpus);
    let ours: Vec<Vec<u32>> = lines.iter().map(|l| tok.encode(l, true)).collect();

    let (tt, tt_decoded) = ids_of(&run_py(
        &py,
        "tiktoken_encode.py",
        &[s(&tokenizer), s(&corpus)],
    ));
    assert_same("llq vs tiktoken", &lines, &ours, &tt);
    let (lc, _) = ids_of(&run_py(
        &py,
        "spm_encode.py",
        &["llama", s(&gguf), s(&corpus)],
    ));
    assert_same("llq vs llama.cpp", &lines, &ours, &lc);
    for (i, ids) in ours.iter().enumerate() {
        assert_eq!(tok.decode(ids), tt_decoded[i], "decode of line {}", i + 1);
    }
    // `llq tokenize` prints the same ids.
    let printed = llq_ok(&["tokenize", s(&gguf), "-f", s(&corpus), "--json"]);
    let printed: Vec<Vec<u32>> = serde_json::from_str(&printed).unwrap();
    assert_same("llq tokenize vs tiktoken", &lines, &printed, &tt);
}

/// base64 of `bytes` (standard alphabet, padded).
fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let v = c
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, &b)| v | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A small tiktoken file: the 256 bytes then a few merged tokens.
fn small_tiktoken() -> Vec<String> {
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for t in ["th", "the", " t", " the", "in", "ing", "er", " a"] {
        tokens.push(t.as_bytes().to_vec());
    }
    tokens
        .iter()
        .enumerate()
        .map(|(r, t)| format!("{} {r}", b64(t)))
        .collect()
}

fn convert_fails(hf: &Path, out: &Path, needle: &str) {
    llq_fails(&["convert", s(hf), "-o", s(out)], needle);
    assert!(!out.exists(), "output written on failure");
}

#[test]
fn small_tiktoken_converts_and_bad_tiktoken_files_fail() {
    let Some(py) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tk = dir.path().join("tokenizer.model");
    let good = small_tiktoken();
    std::fs::write(&tk, good.join("\n") + "\n").unwrap();
    let hf = model_dir(&py, dir.path(), &tk);
    // Without RoPE scaling first; with it at the end.
    let config_path = hf.join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let mut plain: serde_json::Value = serde_json::from_str(&config).unwrap();
    plain.as_object_mut().unwrap().remove("rope_scaling");
    std::fs::write(&config_path, plain.to_string()).unwrap();
    let out = dir.path().join("out.gguf");
    llq_ok(&["convert", s(&hf), "-o", s(&out)]);
    let tok = Tokenizer::from_gguf(&GgufFile::open(&out).unwrap()).unwrap();
    assert_eq!(tok.n_vocab(), 264 + 256);
    assert_eq!(tok.encode(" the thing", false), vec![259, 32, 256, 261]);
    assert_eq!(tok.decode(&[259, 32, 256, 261]), " the thing");
    std::fs::remove_file(&out).unwrap();

    let tk = hf.join("tokenizer.model");
    let write = |lines: &[String]| std::fs::write(&tk, lines.join("\n") + "\n").unwrap();
    let mut bad = good.clone();
    bad[100] = "@@@= 100".into();
    write(&bad);
    convert_fails(&hf, &out, "line 101: invalid base64");
    let mut bad = good.clone();
    bad[100] = format!("{} 99", b64(b"d"));
    write(&bad);
    convert_fails(&hf, &out, "line 101: duplicate rank 99");
    let mut bad = good.clone();
    bad[100] = format!("{} 300", b64(b"d"));
    write(&bad);
    convert_fails(&hf, &out, "contiguous");
    // One token fewer than the embedding's rows.
    write(&good[..good.len() - 1]);
    convert_fails(&hf, &out, "but the embedding has 520 rows");
    write(&good);
    std::fs::write(&config_path, config).unwrap();
    llq_ok(&["convert", s(&hf), "-o", s(&out)]);
    let file = GgufFile::open(&out).unwrap();
    assert!(file.tensor("rope_freqs.weight").is_some());
}

#[test]
fn llama3_fixture_logits_match_llama_cpp() {
    let (Some(py), Some(shared)) = (python(), shared()) else {
        return;
    };
    use llq::Model;
    use llq::{KvCache, Logits, Session};
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = shared.join("tokenizers/llama3/tokenizer.model");
    let hf = model_dir(&py, dir.path(), &tokenizer);
    let gguf = dir.path().join("l3.gguf");
    llq_ok(&["convert", s(&hf), "-o", s(&gguf), "--type", "f32"]);
    let model = Model::load(&gguf).unwrap();
    assert!(model.rope_freqs.is_some(), "rope_freqs.weight not written");
    let tok = Tokenizer::from_gguf(&model.file).unwrap();
    let ids = tok.encode(
        "Robert Boulter is an English film , television and theatre actor . He had a guest \
         @-@ starring role on the television series The Bill in 2000 .",
        true,
    );
    let mut cache = KvCache::new(&model, ids.len());
    let ours = Session::new(&model).forward(&ids, &mut cache, Logits::All);
    let out = dir.path().join("lc.f32");
    let theirs = llama_cpp_logits(&py, &gguf, &ids, &out);
    let max = max_abs_diff(&ours, &theirs);
    println!("llama3 fixture: max |Δlogit| llq vs llama.cpp = {max:.2e}");
    // Measured 2.4e-6 (SIMD kernels) and 2.1e-6 (LLQ_KERNELS=scalar), llama.cpp's KV cache in
    // F32 as llq's.
    assert!(max <= 1.2e-5, "max |Δlogit| {max}");
}

/// The committed fixture's Llama 3 tokenizer in its two forms: tiktoken `tokenizer.model`
/// (Meta folder) and transformers' `tokenizer.json` (HF folder).
fn tiny_llama3(form: &str) -> PathBuf {
    crate::common::root()
        .join("fixtures/tiny-llama3")
        .join(form)
}

/// The `tokenizer.*` keys of a GGUF, in file order.
fn tokenizer_keys(file: &GgufFile) -> Vec<(String, Value)> {
    file.metadata
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .cloned()
        .collect()
}

#[test]
fn tokenizer_json_converts_like_tiktoken() {
    let dir = tempfile::tempdir().unwrap();
    let convert = |form: &str| {
        let out = dir.path().join(format!("{form}.gguf"));
        let src = tiny_llama3(form);
        llq_ok(&["convert", s(&src), "-o", s(&out), "--type", "f32"]);
        GgufFile::open(&out).unwrap()
    };
    let meta = convert("meta");
    let hf = convert("hf");
    let keys = tokenizer_keys(&meta);
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    for want in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
    ] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }
    // Same keys, same order, same values (tokens, types, merges in order, ids, pre).
    assert!(keys == tokenizer_keys(&hf), "tokenizer keys differ");

    // Both forms tokenize every corpus line as tiktoken does with the Meta form's ranks, and
    // the HF form's GGUF as llama.cpp does.
    let (Some(shared), Some(py)) = (shared(), python()) else {
        return;
    };
    let corpus = corpus(&shared, dir.path());
    let lines = lines(&corpus);
    let tiktoken = tiny_llama3("meta/tokenizer.model");
    let (tt, _) = ids_of(&run_py(
        &py,
        "tiktoken_encode.py",
        &[s(&tiktoken), s(&corpus)],
    ));
    for (form, file) in [("tokenizer.model", &meta), ("tokenizer.json", &hf)] {
        let tok = Tokenizer::from_gguf(file).unwrap();
        let ours: Vec<Vec<u32>> = lines.iter().map(|l| tok.encode(l, true)).collect();
        assert_same(&format!("{form}: llq vs tiktoken"), &lines, &ours, &tt);
    }
    let hf_gguf = dir.path().join("hf.gguf");
    let (lc, _) = ids_of(&run_py(
        &py,
        "spm_encode.py",
        &["llama", s(&hf_gguf), s(&corpus)],
    ));
    assert_same("tokenizer.json: llama.cpp vs tiktoken", &lines, &lc, &tt);
}

#[test]
fn tokenizer_json_bos_eos_sources_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    std::fs::create_dir(&hf).unwrap();
    for f in std::fs::read_dir(tiny_llama3("hf")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, hf.join(f.file_name().unwrap())).unwrap();
    }
    let out = dir.path().join("out.gguf");
    let read_json = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(hf.join(name)).unwrap()).unwrap()
    };
    let write_json =
        |name: &str, v: &serde_json::Value| std::fs::write(hf.join(name), v.to_string()).unwrap();
    let ids = |out: &Path| {
        let f = GgufFile::open(out).unwrap();
        let id = |k: &str| f.get(k).and_then(Value::as_u64);
        (
            id("tokenizer.ggml.bos_token_id"),
            id("tokenizer.ggml.eos_token_id"),
        )
    };

    // tokenizer_config.json's names win; config.json's ids fill what they leave out (a list
    // counts as none), as in llama.cpp's converter.
    let config = read_json("config.json");
    let mut no_ids = config.clone();
    no_ids["bos_token_id"] = serde_json::Value::Null;
    no_ids["eos_token_id"] = serde_json::json!([]);
    write_json("config.json", &no_ids);
    llq_ok(&["convert", s(&hf), "-o", s(&out)]);
    assert_eq!(ids(&out), (Some(512), Some(513)));
    std::fs::remove_file(&out).unwrap();
    let mut list = config.clone();
    list["eos_token_id"] = serde_json::json!([521, 513]);
    write_json("config.json", &list);
    llq_ok(&["convert", s(&hf), "-o", s(&out)]);
    assert_eq!(ids(&out), (Some(512), Some(513)));
    std::fs::remove_file(&out).unwrap();

    let tok_config = read_json("tokenizer_config.json");
    let mut unknown = tok_config.clone();
    unknown["bos_token"] = serde_json::json!({"content": "<s>"});
    write_json("tokenizer_config.json", &unknown);
    write_json("config.json", &no_ids);
    convert_fails(&hf, &out, "no BOS or EOS token");
    std::fs::remove_file(hf.join("tokenizer_config.json")).unwrap();
    convert_fails(&hf, &out, "no BOS or EOS token");
    let mut far = config.clone();
    far["bos_token_id"] = serde_json::json!(5000);
    write_json("config.json", &far);
    convert_fails(
        &hf,
        &out,
        "BOS token id 5000 is outside the vocabulary of 768 tokens",
    );
    write_json("tokenizer_config.json", &tok_config);
    far["bos_token_id"] = serde_json::json!("x");
    write_json("config.json", &far);
    convert_fails(
        &hf,
        &out,
        "config.json: bos_token_id \"x\" is not a token id",
    );
    write_json("config.json", &config);

    let tokenizer = read_json("tokenizer.json");
    let mut other = tokenizer.clone();
    other["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = serde_json::json!("\\s+");
    write_json("tokenizer.json", &other);
    convert_fails(
        &hf,
        &out,
        "tokenizer.json: pre-tokenizer pattern \"\\\\s+\" is not supported",
    );
    let mut gap = tokenizer.clone();
    gap["added_tokens"][3]["id"] = serde_json::json!(900);
    write_json("tokenizer.json", &gap);
    convert_fails(&hf, &out, "tokenizer.json: token ids are not contiguous");
    let mut short = tokenizer.clone();
    short["added_tokens"].as_array_mut().unwrap().pop();
    write_json("tokenizer.json", &short);
    convert_fails(
        &hf,
        &out,
        "tokenizer has 767 tokens but the embedding has 768 rows",
    );
    let mut wordpiece = tokenizer.clone();
    wordpiece["model"]["type"] = serde_json::json!("WordPiece");
    write_json("tokenizer.json", &wordpiece);
    convert_fails(&hf, &out, "model type \"WordPiece\" is not BPE");
    std::fs::remove_file(hf.join("tokenizer.json")).unwrap();
    convert_fails(
        &hf,
        &out,
        "no tokenizer.model (SentencePiece or tiktoken) or tokenizer.json",
    );
}
