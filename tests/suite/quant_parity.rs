//! llq's quantized files vs llama.cpp's (llama-cpp-python's bundled library): byte identity
//! with `llama_model_quantize` for every file type, legacy block bytes vs gguf-py's
//! `gguf.quants.quantize`, and every file type loading and running in llama.cpp with logits
//! close to the F32 file's (which in turn match the fixture's transformers reference).

use crate::common::{fixture, llq_ok, python, read_f32, run_py, s, shared};
use llq_formats::gguf::GgufFile;
use llq_types::GgmlType;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Every file type `llq quantize` writes from an F32 input (F32 itself is not a requantization).
const QUANTIZE_TYPES: [&str; 16] = [
    "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
    "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K",
];

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

fn names_in_order(dump: &Json) -> Vec<&str> {
    dump["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// Metadata differences between llq's file and llama.cpp's, as printable lines.
fn kv_differences(ours: &Json, theirs: &Json) -> Vec<String> {
    let map = |d: &Json| -> BTreeMap<String, Json> {
        d["kv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["key"].as_str().unwrap().to_string(), e.clone()))
            .collect()
    };
    let (a, b) = (map(ours), map(theirs));
    let mut out = Vec::new();
    for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        match (a.get(key), b.get(key)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => {
                let short = |v: &Json| v.to_string().chars().take(80).collect::<String>();
                out.push(format!("{key}: llq {} / llama.cpp {}", short(x), short(y)));
            }
            (Some(_), None) => out.push(format!("{key}: only in llq's file")),
            (None, _) => out.push(format!("{key}: only in llama.cpp's file")),
        }
    }
    let order = |d: &Json| -> Vec<String> {
        d["kv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_string())
            .collect()
    };
    if out.is_empty() && order(ours) != order(theirs) {
        out.push(format!(
            "same keys and values, different order: llama.cpp's order {:?}",
            order(theirs)
        ));
    }
    out
}

/// Part 1: `llq quantize F32.gguf OUT TYPE` writes the same tensors (names, types, shapes, data
/// bytes) as llama.cpp's `llama_model_quantize` on the same F32 GGUF, for every file type.
#[test]
fn quantize_equals_llama_quantize() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (ours_dir, theirs_dir) = (dir.path().join("llq"), dir.path().join("llama"));
    std::fs::create_dir_all(&ours_dir).unwrap();
    std::fs::create_dir_all(&theirs_dir).unwrap();
    let f32_path = dir.path().join("F32.gguf");
    convert("meta", &f32_path, "f32", &[]);
    for ty in QUANTIZE_TYPES {
        let out = ours_dir.join(format!("{ty}.gguf"));
        llq_ok(&["quantize", s(&f32_path), s(&out), ty, "--quiet"]);
    }
    let mut args = vec![s(&f32_path), s(&theirs_dir), "2"];
    args.extend(QUANTIZE_TYPES);
    args.extend(["--dump", s(&ours_dir)]);
    let report: Json = serde_json::from_str(&run_py(&python, "llama_quantize.py", &args)).unwrap();

    let mut failures = Vec::new();
    let mut compared = 0;
    let mut notes: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    println!("type     tensors  identical  llq types");
    for ty in QUANTIZE_TYPES {
        let entry = &report[ty];
        let ours = &entry["other"];
        if entry["rc"].as_i64() != Some(0) {
            println!(
                "SKIPPED {ty}: llama.cpp refused it (rc {}): {}",
                entry["rc"], entry["stderr_tail"]
            );
            continue;
        }
        compared += 1;
        let (a, b) = (tensors_by_name(ours), tensors_by_name(entry));
        let names_a: Vec<&String> = a.keys().collect();
        let names_b: Vec<&String> = b.keys().collect();
        if names_a != names_b {
            failures.push(format!("{ty}: tensor names {names_a:?} vs {names_b:?}"));
            continue;
        }
        let mut identical = 0;
        let mut mix: BTreeMap<String, usize> = BTreeMap::new();
        for (name, t) in &a {
            let u = b[name];
            *mix.entry(type_name(&t["type"])).or_default() += 1;
            if t["type"] != u["type"] {
                failures.push(format!(
                    "{ty} {name}: llq chose {}, llama.cpp {}",
                    type_name(&t["type"]),
                    type_name(&u["type"])
                ));
            } else if t["shape"] != u["shape"] {
                failures.push(format!(
                    "{ty} {name}: shape {} vs {}",
                    t["shape"], u["shape"]
                ));
            } else if t["sha256"] != u["sha256"] {
                failures.push(format!(
                    "{ty} {name}: {} data differs",
                    type_name(&t["type"])
                ));
            } else {
                identical += 1;
            }
        }
        println!("{ty:<8} {:>7}  {identical:>9}  {mix:?}", a.len());
        // Layout differences are allowed; each distinct one is printed once below.
        if names_in_order(ours) != names_in_order(entry) {
            let note = format!("tensor order: llama.cpp writes {:?}", names_in_order(entry));
            notes.entry(note).or_default().push(ty);
        }
        for d in kv_differences(ours, entry) {
            notes.entry(format!("metadata: {d}")).or_default().push(ty);
        }
    }
    for (note, types) in &notes {
        println!("{types:?}: {note}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared > 0, "llama.cpp refused every type");
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

/// Per-type bounds vs the F32 file's logits over the first 256 held-out tokens: max abs diff,
/// mean abs diff, minimum top-1 agreement: about 2-3x what llama.cpp measured on this fixture
/// (top-1: a few positions fewer), from most to least precise.
const LOGIT_BOUNDS: [(&str, f32, f32, f32); 17] = [
    ("F32", 0.0, 0.0, 1.0),
    ("F16", 0.01, 0.001, 0.99),
    ("BF16", 0.03, 0.004, 0.99),
    ("Q8_0", 0.15, 0.015, 0.97),
    ("Q6_K", 0.2, 0.03, 0.96),
    ("Q5_1", 0.6, 0.04, 0.94),
    ("Q5_0", 0.6, 0.04, 0.94),
    ("Q5_K_M", 0.6, 0.04, 0.94),
    ("Q5_K_S", 0.6, 0.04, 0.94),
    ("Q4_1", 0.8, 0.07, 0.92),
    ("Q4_0", 0.8, 0.07, 0.92),
    ("Q4_K_M", 0.8, 0.07, 0.92),
    ("Q4_K_S", 0.8, 0.07, 0.92),
    ("Q3_K_L", 1.5, 0.1, 0.9),
    ("Q3_K_M", 1.5, 0.1, 0.9),
    ("Q3_K_S", 1.5, 0.1, 0.9),
    ("Q2_K", 3.0, 0.2, 0.85),
];

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
    for (ty, ..) in LOGIT_BOUNDS {
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
        "F32 vs transformers (64 positions): max abs diff {max_ref:.6} (bound {:.6} = 1e-3 x range {range:.3}), argmax equal everywhere",
        1e-3 * range
    );
    assert!(
        max_ref <= 1e-3 * range,
        "F32 logits vs reference: {max_ref}"
    );

    println!("type     max|d|   mean|d|  top-1  (vs F32 over {N_TOKENS} positions)");
    let mut failures = Vec::new();
    for (ty, max_bound, mean_bound, top1_bound) in LOGIT_BOUNDS {
        let logits = read_f32(&dir.path().join(format!("{ty}.f32")));
        assert_eq!(logits.len(), f32_logits.len(), "{ty}");
        let (mut max, mut sum) = (0f32, 0f64);
        for (a, b) in logits.iter().zip(&f32_logits) {
            assert!(a.is_finite(), "{ty}: non-finite logit");
            max = max.max((a - b).abs());
            sum += f64::from((a - b).abs());
        }
        let mean = (sum / logits.len() as f64) as f32;
        let agree = logits
            .chunks_exact(n_vocab)
            .zip(f32_logits.chunks_exact(n_vocab))
            .filter(|(a, b)| argmax(a) == argmax(b))
            .count();
        let top1 = agree as f32 / N_TOKENS as f32;
        println!("{ty:<8} {max:7.4}  {mean:7.5}  {top1:.4}");
        if max > max_bound || mean > mean_bound || top1 < top1_bound {
            failures.push(format!(
                "{ty}: max {max} (<= {max_bound}), mean {mean} (<= {mean_bound}), top-1 {top1} (>= {top1_bound})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
