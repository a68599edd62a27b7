//! llq's quantized files vs llama.cpp's (llama-cpp-python 0.3.36's bundled library, llama.cpp
//! 0c1e570): the same file as `llama_model_quantize` writes for every file type but for the
//! order of tensors and of two keys, legacy block bytes vs gguf-py's `gguf.quants.quantize`,
//! and every file type loading and running in llama.cpp with logits within measured bounds of
//! the F32 file's (which in turn match the fixture's transformers reference).

use crate::common::{
    fixture, llq_ok, python, read_f32, run_py, s, shared, synthetic_model, SyntheticShape,
};
use llq_formats::gguf::GgufFile;
use llq_types::{FileType, GgmlType};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Every file type `llq quantize` writes from an F32 input (F32 itself is not a requantization).
fn quantize_types() -> Vec<&'static str> {
    FileType::all()
        .filter(|&ft| ft != FileType::F32)
        .map(FileType::name)
        .collect()
}

const LEGACY_TYPES: [&str; 5] = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"];

/// Held-out text: bytes [HELDOUT_START, end) of the shared corpus (fixtures/README.md).
const HELDOUT_START: usize = 1_177_275;
const HELDOUT_SHA256: &str = "915cd6596ab2fb4a8a9996f94bbff2bc22afd712e9dc103ca8470bc961c6282d";
const N_TOKENS: usize = 256;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn type_name(id: &Json) -> String {
    let id = id.as_u64().expect("type id") as u32;
    GgmlType::from_id(id).map_or_else(|| format!("type {id}"), |t| t.name().to_string())
}

fn convert(src: &str, out: &Path, ty: &str, extra: &[&str]) {
    let src = fixture(src);
    let mut args = vec!["convert", s(&src), "-o", s(out), "--type", ty, "--quiet"];
    args.extend(extra);
    llq_ok(&args);
}

/// A gguf_dump.py tensor table keyed by name.
fn tensors_by_name(dump: &Json) -> BTreeMap<String, &Json> {
    dump["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t))
        .collect()
}

/// Part 1: `llq quantize F32.gguf OUT TYPE` writes the same file as llama.cpp's
/// `llama_model_quantize` on the same F32 GGUF, for every file type (none may be refused): GGUF
/// version, alignment, header and file size, every metadata key, type and value, every tensor's
/// name, type, shape and data bytes (tests/py/llama_cpp_layout.py). The files differ only in
/// order, in two named ways that llama.cpp's writer imposes (checked against its rule, not
/// ignored): llama.cpp sorts the tensors by layer, then name, and appends
/// general.quantization_version and general.file_type after the input's keys; llq keeps the
/// source's tensor order and writes those two keys after general.name.
#[test]
fn quantize_equals_llama_quantize() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("F32.gguf");
    convert("meta", &f32_path, "f32", &[]);
    let failures = llama_quantize_differences(&python, &f32_path, &quantize_types(), dir.path());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Part 1 on a model with the shapes the fixture lacks: GQA 4 (the IQ4 types' attn_v rule), 8
/// layers (the first-eighth ffn_down rules) and ffn rows of 416 (not whole 256-blocks: the
/// fallbacks IQ4_XS → IQ4_NL, Q5_K → Q5_1, Q2_K / Q3_K → Q4_0 ...).
#[test]
fn type_rules_equal_llama_quantize_on_a_gqa_model() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let shape = SyntheticShape {
        embd: 256,
        ff: 416,
        vocab: 64,
        layers: 8,
        heads: 8,
        kv_heads: 2,
    };
    let model = synthetic_model(dir.path(), &shape);
    let types = ["IQ4_XS", "IQ4_NL", "Q2_K", "Q3_K_M", "Q4_K_M", "Q4_0"];
    let failures = llama_quantize_differences(&python, &model, &types, dir.path());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Quantize `f32_path` to each of `types` with llq and with llama.cpp (in folders under `dir`)
/// and list every difference llama_quantize.py finds; prints each type's mix.
fn llama_quantize_differences(
    python: &Path,
    f32_path: &Path,
    types: &[&str],
    dir: &Path,
) -> Vec<String> {
    let (ours_dir, theirs_dir) = (dir.join("llq"), dir.join("llama"));
    std::fs::create_dir_all(&ours_dir).unwrap();
    std::fs::create_dir_all(&theirs_dir).unwrap();
    for ty in types {
        let out = ours_dir.join(format!("{ty}.gguf"));
        llq_ok(&["quantize", s(f32_path), s(&out), ty, "--quiet"]);
    }
    let mut args = vec![s(f32_path), s(&theirs_dir), "2"];
    args.extend(types);
    args.extend(["--dump", s(&ours_dir)]);
    let report: Json = serde_json::from_str(&run_py(python, "llama_quantize.py", &args)).unwrap();

    let mut failures = Vec::new();
    println!("type     tensors  llq types");
    for ty in types {
        let entry = &report[ty];
        if entry["rc"].as_i64() != Some(0) {
            failures.push(format!(
                "{ty}: llama.cpp refused it (rc {}): {}",
                entry["rc"], entry["stderr_tail"]
            ));
            continue;
        }
        let ours = tensors_by_name(&entry["other"]);
        let mut mix: BTreeMap<String, usize> = BTreeMap::new();
        for t in ours.values() {
            *mix.entry(type_name(&t["type"])).or_default() += 1;
        }
        println!("{ty:<8} {:>7}  {mix:?}", ours.len());
        let differences = entry["differences"].as_array().expect("differences");
        failures.extend(
            differences
                .iter()
                .map(|d| format!("{ty}: {}", d.as_str().unwrap())),
        );
        // A type whose mix is all F32 would compare nothing quantized.
        if !mix.keys().any(|t| t != "F32") {
            failures.push(format!("{ty}: no quantized tensor"));
        }
    }
    failures
}

/// Part 2: With `--pure`, every 2-D tensor of a legacy-type file is exactly gguf-py's
/// `gguf.quants.quantize` of the F32 conversion's tensor.
#[test]
fn pure_legacy_types_equal_gguf_py() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f32_path = dir.path().join("F32.gguf");
    convert("meta", &f32_path, "f32", &[]);
    let mut args = vec![s(&f32_path)];
    args.extend(LEGACY_TYPES);
    let want: Json = serde_json::from_str(&run_py(&python, "pure_oracle.py", &args)).unwrap();
    let reference = GgufFile::open(&f32_path).unwrap();
    for ty in LEGACY_TYPES {
        let path = dir.path().join(format!("{ty}.gguf"));
        convert("meta", &path, ty, &["--pure"]);
        let file = GgufFile::open(&path).unwrap();
        assert_eq!(file.tensors.len(), reference.tensors.len());
        let mut n = 0;
        for t in &file.tensors {
            if t.dims.len() != 2 {
                assert_eq!(t.ty, GgmlType::F32, "{ty} {}", t.name);
                continue;
            }
            assert_eq!(t.ty.name(), ty, "--pure {ty}: {}", t.name);
            let expected = want[ty][&t.name].as_str().expect("oracle hash");
            assert_eq!(sha256(file.tensor_data(t)), expected, "{ty} {}", t.name);
            n += 1;
        }
        assert_eq!(n, want[ty].as_object().unwrap().len());
        println!("{ty}: {n} 2-D tensors equal gguf.quants.quantize");
    }
}

/// Per-type bounds on llama.cpp's logits of each file against its logits of the F32 file, over
/// the first 256 held-out tokens: max |Δ|, mean |Δ|, and the number of positions whose top-1
/// token differs. Each bound is twice the value measured (2026-12-03, llama.cpp 0c1e570 through
/// llama-cpp-python 0.3.36; llama.cpp computes these, so llq's kernels do not change them) and
/// at least one position for top-1; the measured values are beside each row.
const LOGIT_BOUNDS: [(&str, f32, f32, usize); 18] = [
    ("F16", 0.004, 0.0004, 1),   // measured 0.0020, 0.00019, 0
    ("BF16", 0.021, 0.0024, 1),  // measured 0.0103, 0.00119, 0
    ("Q8_0", 0.11, 0.011, 2),    // measured 0.0531, 0.00534, 1
    ("Q6_K", 0.15, 0.021, 2),    // measured 0.0739, 0.01035, 1
    ("Q5_1", 0.61, 0.032, 10),   // measured 0.3027, 0.01599, 5
    ("Q5_0", 0.31, 0.031, 10),   // measured 0.1538, 0.01547, 5
    ("Q5_K_M", 0.37, 0.028, 10), // measured 0.1809, 0.01386, 5
    ("Q5_K_S", 0.37, 0.028, 10), // measured 0.1837, 0.01397, 5
    ("Q4_1", 0.60, 0.056, 16),   // measured 0.2954, 0.02760, 8
    ("Q4_0", 0.68, 0.048, 8),    // measured 0.3357, 0.02384, 4
    ("Q4_K_M", 0.67, 0.048, 14), // measured 0.3336, 0.02385, 7
    ("Q4_K_S", 0.62, 0.049, 10), // measured 0.3072, 0.02441, 5
    ("IQ4_NL", 0.56, 0.047, 6),  // measured 0.2789, 0.02313, 3
    ("IQ4_XS", 0.46, 0.043, 14), // measured 0.2266, 0.02138, 7
    ("Q3_K_L", 1.11, 0.076, 18), // measured 0.5534, 0.03752, 9
    ("Q3_K_M", 1.14, 0.076, 20), // measured 0.5695, 0.03771, 10
    ("Q3_K_S", 1.21, 0.079, 24), // measured 0.6041, 0.03918, 12
    ("Q2_K", 2.76, 0.149, 36),   // measured 1.3783, 0.07424, 18
];

/// Max |Δlogit| of llama.cpp on llq's F32 file against transformers' fp32 logits over the 64
/// held-out positions of the fixture reference: measured 2.1e-3 (llama.cpp keeps its KV cache in
/// F16 by default, which this test leaves as users run it; logit range 20.4).
const F32_VS_TRANSFORMERS: f32 = 5e-3;

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Part 3: Every file type llq writes from the HF fixture loads in llama.cpp; its logits on the
/// held-out text stay within per-type bounds of the F32 file's, and the F32 file's logits match
/// the fixture's transformers reference.
#[test]
fn every_type_runs_in_llama_cpp() {
    let mut bounded: Vec<&str> = LOGIT_BOUNDS.iter().map(|b| b.0).collect();
    let mut all = quantize_types();
    bounded.sort();
    all.sort();
    assert_eq!(bounded, all, "LOGIT_BOUNDS lists every file type");
    let Some(python) = python() else { return };
    let Some(shared) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let corpus = std::fs::read(shared.join("corpus/wikitext-2-test.txt")).unwrap();
    let heldout = &corpus[HELDOUT_START..];
    assert_eq!(sha256(heldout), HELDOUT_SHA256, "held-out text");
    let text_path = dir.path().join("heldout.txt");
    std::fs::write(&text_path, heldout).unwrap();

    let mut args: Vec<String> = vec![
        s(&fixture("meta/tokenizer.model")).into(),
        s(&text_path).into(),
        N_TOKENS.to_string(),
        s(dir.path()).into(),
    ];
    for ty in std::iter::once("F32").chain(LOGIT_BOUNDS.map(|(ty, ..)| ty)) {
        let path = dir.path().join(format!("{ty}.gguf"));
        convert("hf", &path, ty, &[]);
        args.push(format!("{ty}={}", s(&path)));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out: Json = serde_json::from_str(&run_py(&python, "llama_logits.py", &args)).unwrap();
    let ids: Vec<u64> = out["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), N_TOKENS);
    // sentencepiece and llama.cpp's own tokenizer agree on these ids.
    assert_eq!(
        out["ids"], out["llama_ids"],
        "llama.cpp tokenizes differently"
    );
    let n_vocab = out["n_vocab"].as_u64().unwrap() as usize;
    assert_eq!(n_vocab, 512);

    // F32 vs the transformers reference (first 64 held-out positions).
    let reference: Json =
        serde_json::from_str(&std::fs::read_to_string(fixture("reference/logits.json")).unwrap())
            .unwrap();
    let ref_ids: Vec<u64> = reference["heldout64"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(&ids[..ref_ids.len()], &ref_ids[..], "held-out ids");
    let ref_logits = read_f32(&fixture("reference/heldout64_logits.f32.bin"));
    let f32_logits = read_f32(&dir.path().join("F32.f32"));
    assert_eq!(f32_logits.len(), N_TOKENS * n_vocab);
    let (lo, hi) = ref_logits
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let range = hi - lo;
    let mut max_ref = 0f32;
    for (p, want) in ref_logits.chunks_exact(n_vocab).enumerate() {
        let got = &f32_logits[p * n_vocab..(p + 1) * n_vocab];
        for (a, b) in got.iter().zip(want) {
            max_ref = max_ref.max((a - b).abs());
        }
        assert_eq!(argmax(got), argmax(want), "F32 vs reference argmax at {p}");
    }
    println!(
        "F32 vs transformers (64 positions): max abs diff {max_ref:.6} (bound \
         {F32_VS_TRANSFORMERS}; logit range {range:.3}), argmax equal everywhere"
    );
    assert!(
        max_ref <= F32_VS_TRANSFORMERS,
        "F32 logits vs reference: {max_ref}"
    );

    println!("type     max|d|   mean|d|  top-1 differs  (vs F32 over {N_TOKENS} positions)");
    let mut failures = Vec::new();
    for (ty, max_bound, mean_bound, differ_bound) in LOGIT_BOUNDS {
        let logits = read_f32(&dir.path().join(format!("{ty}.f32")));
        assert_eq!(logits.len(), f32_logits.len(), "{ty}");
        let (mut max, mut sum) = (0f32, 0f64);
        for (a, b) in logits.iter().zip(&f32_logits) {
            assert!(a.is_finite(), "{ty}: non-finite logit");
            max = max.max((a - b).abs());
            sum += f64::from((a - b).abs());
        }
        let mean = (sum / logits.len() as f64) as f32;
        let differ = logits
            .chunks_exact(n_vocab)
            .zip(f32_logits.chunks_exact(n_vocab))
            .filter(|(a, b)| argmax(a) != argmax(b))
            .count();
        println!("{ty:<8} {max:7.4}  {mean:7.5}  {differ:>3}");
        if max > max_bound || mean > mean_bound || differ > differ_bound {
            failures.push(format!(
                "{ty}: max {max} (<= {max_bound}), mean {mean} (<= {mean_bound}), top-1 differs \
                 at {differ} positions (<= {differ_bound})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
