//! The committed Llama-3-shaped fixture (`fixtures/tiny-llama3`, written by
//! `fixtures/gen/generate_llama3.py`): a Meta folder (tiktoken tokenizer.model, params.json
//! with `use_scaled_rope`) and a Hugging Face folder (tokenizer.json, `rope_parameters` of type
//! llama3) holding the same bf16 weights. Checked against the generator's transformers fp32
//! logits and RoPE divisors, and tiktoken's ids; plus `--rope-scaling-factor` and its errors.

use crate::common::{
    fixture, llama_cpp_logits, llq_fails, llq_ok, max_abs_diff, python, read_f32, root, s,
};
use llq::Model;
use llq::Tokenizer;
use llq::{KvCache, Logits, Session};
use llq_formats::gguf::GgufFile;
use std::path::{Path, PathBuf};

fn l3(rel: &str) -> PathBuf {
    root().join("fixtures/tiny-llama3").join(rel)
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(l3("reference/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn convert(src: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["convert", s(src), "-o", s(out), "--type", "f32", "--quiet"];
    args.extend_from_slice(extra);
    llq_ok(&args);
}

/// `rope_freqs.weight` of a GGUF.
fn rope_freqs(gguf: &Path) -> Vec<f32> {
    let file = GgufFile::open(gguf).unwrap();
    let t = file.tensor("rope_freqs.weight").expect("rope_freqs.weight");
    file.tensor_data(t)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Max |Δ| of llq's logits on the reference prompt against transformers' (logit range 8.46):
/// measured 7.3e-6 (SIMD kernels) and 6.4e-6 (LLQ_KERNELS=scalar).
const MAX_DIFF: f32 = 3e-5;

/// Checks llq's logits on the reference prompt against transformers' within MAX_DIFF, and that
/// every position has the same argmax.
fn check_logits(gguf: &Path, what: &str) {
    let r = reference();
    let ids = u32s(&r["prompt_ids"]);
    let model = Model::load(gguf).unwrap();
    let mut cache = KvCache::new(&model, ids.len());
    let ours = Session::new(&model).forward(&ids, &mut cache, Logits::All);
    let theirs = read_f32(&l3("reference/prompt_logits.f32.bin"));
    let max = max_abs_diff(&ours, &theirs);
    let range = r["logit_range"].as_f64().unwrap() as f32;
    let sensitivity = r["rope_scaling_sensitivity_max_abs"].as_f64().unwrap();
    println!("{what}: max |Δlogit| vs transformers {max:.2e} (range {range:.3}, RoPE scaling moves logits by up to {sensitivity:.3})");
    assert!(max <= MAX_DIFF, "{what}: max |Δlogit| {max}");
    let vocab = theirs.len() / ids.len();
    let argmax = |row: &[f32]| {
        row.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    for (pos, (a, b)) in ours.chunks(vocab).zip(theirs.chunks(vocab)).enumerate() {
        assert_eq!(argmax(a), argmax(b), "{what}: argmax at position {pos}");
    }
}

#[test]
fn meta_and_hf_forms_convert_to_the_same_tensors_and_match_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta.gguf");
    let hf = dir.path().join("hf.gguf");
    convert(&l3("meta"), &meta, &[]);
    convert(&l3("hf"), &hf, &[]);
    let (a, b) = (GgufFile::open(&meta).unwrap(), GgufFile::open(&hf).unwrap());
    assert_eq!(a.tensors.len(), b.tensors.len());
    for t in &a.tensors {
        let u = b
            .tensor(&t.name)
            .unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!((t.dims.clone(), t.ty), (u.dims.clone(), u.ty), "{}", t.name);
        assert!(a.tensor_data(t) == b.tensor_data(u), "{} differs", t.name);
    }
    check_logits(&meta, "meta → f32");
    check_logits(&hf, "hf → f32");
}

#[test]
fn rope_divisors_match_transformers_and_the_factor_flag() {
    let r = reference();
    let dir = tempfile::tempdir().unwrap();
    let mut worst = 0f64;
    for (factor, flag) in [("8.0", None), ("32.0", Some("32"))] {
        let want: Vec<f64> = r["rope_divisors"][factor]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        for src in ["meta", "hf"] {
            let out = dir.path().join(format!("{src}-{factor}.gguf"));
            let extra: Vec<&str> = flag
                .map(|f| vec!["--rope-scaling-factor", f])
                .unwrap_or_default();
            convert(&l3(src), &out, &extra);
            let got = rope_freqs(&out);
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let rel = (*g as f64 - w).abs() / w;
                worst = worst.max(rel);
                // Measured up to 3.2e-7 (f32 against transformers' f64 divisors).
                assert!(rel < 1e-6, "{src} factor {factor} pair {i}: {g} vs {w}");
            }
        }
    }
    println!("RoPE divisors: largest relative difference {worst:.1e}");
}

#[test]
fn tokenizer_ids_match_tiktoken() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("meta.gguf");
    convert(&l3("meta"), &gguf, &[]);
    let tok = Tokenizer::from_gguf(&GgufFile::open(&gguf).unwrap()).unwrap();
    let r = reference();
    for case in r["sentences"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids = tok.encode(text, false);
        assert_eq!(ids, u32s(&case["ids"]), "{text:?}");
        assert_eq!(tok.decode(&ids), text);
    }
}

#[test]
fn llama_cpp_runs_the_converted_fixture_like_transformers() {
    let Some(py) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("meta.gguf");
    convert(&l3("meta"), &gguf, &[]);
    let r = reference();
    let out = dir.path().join("lc.f32");
    let lc = llama_cpp_logits(&py, &gguf, &u32s(&r["prompt_ids"]), &out);
    let theirs = read_f32(&l3("reference/prompt_logits.f32.bin"));
    let max = max_abs_diff(&lc, &theirs);
    let range = r["logit_range"].as_f64().unwrap() as f32;
    println!("llama.cpp on llq's GGUF: max |Δlogit| vs transformers {max:.2e} (range {range:.3})");
    // Measured 2.4e-5 (llama.cpp's arithmetic, KV cache in F32; RoPE scaling alone moves the
    // logits by up to 0.3).
    assert!(max <= 1e-4, "max |Δlogit| {max}");
}

#[test]
fn rope_scaling_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let o = s(&out);
    // The flag on a model without Llama 3.1 scaling, and on a GGUF input.
    llq_fails(
        &[
            "convert",
            s(&fixture("meta")),
            "-o",
            o,
            "--rope-scaling-factor",
            "8",
        ],
        "does not use Llama 3.1 RoPE scaling",
    );
    let gguf = dir.path().join("l3.gguf");
    convert(&l3("meta"), &gguf, &[]);
    llq_fails(
        &["convert", s(&gguf), "-o", o, "--rope-scaling-factor", "8"],
        "applies to checkpoints, not to a GGUF input",
    );
    llq_fails(
        &[
            "convert",
            s(&l3("meta")),
            "-o",
            o,
            "--rope-scaling-factor=0",
        ],
        "invalid Llama 3 RoPE scaling",
    );
    // use_scaled_rope with a SentencePiece (Llama 2) vocabulary.
    let spm = dir.path().join("spm");
    std::fs::create_dir(&spm).unwrap();
    for f in ["consolidated.00.pth", "tokenizer.model"] {
        std::fs::copy(fixture("meta").join(f), spm.join(f)).unwrap();
    }
    let params = std::fs::read_to_string(fixture("meta/params.json")).unwrap();
    let mut params: serde_json::Value = serde_json::from_str(&params).unwrap();
    params["use_scaled_rope"] = true.into();
    std::fs::write(spm.join("params.json"), params.to_string()).unwrap();
    llq_fails(
        &["convert", s(&spm), "-o", o],
        "512-token SentencePiece vocabulary",
    );
    assert!(!out.exists());
}
