//! `--imatrix FILE`: the weighted rounding equals ggml's own quantizer given the same weights,
//! and an imatrix that does not fit the model (or is not an imatrix) is refused before OUT exists.

use crate::common::{
    fixture, llq, python, quantize_with_imatrix_like_llama_cpp, run_py, s, synthetic_model,
    SyntheticShape,
};
use llq_formats::gguf::GgufFile;
use std::path::{Path, PathBuf};

/// The tiny fixture as an all-F32 GGUF (weights of 256 and 416 columns).
fn f32_model(dir: &Path) -> PathBuf {
    let out = dir.join("f32.gguf");
    let hf = fixture("hf");
    crate::common::llq_ok(&["convert", s(&hf), "-o", s(&out), "-t", "f32", "--quiet"]);
    out
}

/// A legacy imatrix `.dat`: entries (name, ncall, sums), then the chunk count and dataset name.
fn write_dat(path: &Path, entries: &[(String, i32, Vec<f32>)], trailer: Option<(i32, &str)>) {
    let mut b = Vec::new();
    b.extend((entries.len() as i32).to_le_bytes());
    for (name, ncall, sums) in entries {
        b.extend((name.len() as i32).to_le_bytes());
        b.extend(name.as_bytes());
        b.extend(ncall.to_le_bytes());
        b.extend((sums.len() as i32).to_le_bytes());
        for v in sums {
            b.extend(v.to_le_bytes());
        }
    }
    if let Some((chunks, dataset)) = trailer {
        b.extend(chunks.to_le_bytes());
        b.extend((dataset.len() as i32).to_le_bytes());
        b.extend(dataset.as_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Entries for every matrix of `model` but `skip`, with uneven positive sums (as sums of squared
/// activations are) and ncall 7, so that dividing by ncall matters.
fn entries_for(model: &Path, skip: &str) -> Vec<(String, i32, Vec<f32>)> {
    let file = GgufFile::open(model).unwrap();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32
    };
    file.tensors
        .iter()
        .filter(|t| t.dims.len() == 2 && t.name != "token_embd.weight" && t.name != skip)
        .map(|t| {
            let sums = (0..t.dims[0])
                .map(|_| 7.0 * next().powi(3) * 50.0)
                .collect();
            (t.name.clone(), 7, sums)
        })
        .collect()
}

#[test]
fn weighted_rounding_equals_ggml() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let model = f32_model(dir.path());
    let mut entries = entries_for(&model, "blk.3.ffn_up.weight");
    entries.push(("blk.99.attn_q.weight".into(), 7, vec![1.0; 256]));
    let dat = dir.path().join("imatrix.dat");
    write_dat(&dat, &entries, Some((12, "calibration.txt")));
    for ty in ["q4_0", "q4_k_m", "q5_0", "q3_k_s", "q6_k"] {
        let out = dir.path().join(format!("{ty}.gguf"));
        let run = llq(&[
            "quantize",
            s(&model),
            s(&out),
            ty,
            "--imatrix",
            s(&dat),
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{ty}: {stderr}");
        // The missing tensor and the stray entry are warnings, as in llama-quantize.
        assert!(
            stderr.contains("warning:") && stderr.contains("blk.3.ffn_up.weight"),
            "{stderr}"
        );
        assert!(stderr.contains("blk.99.attn_q.weight"), "{stderr}");
        let summary = run_py(&py, "imatrix_oracle.py", &[s(&model), s(&out), s(&dat)]);
        println!("{ty}: {summary}");
        let count = |key: &str| -> usize {
            summary
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|n| n.parse().ok())
                .unwrap()
        };
        // Every quantized (2-D) tensor checked, each one with an entry checked with its weights.
        let file = GgufFile::open(&model).unwrap();
        let matrices: Vec<&str> = file
            .tensors
            .iter()
            .filter(|t| t.dims.len() == 2)
            .map(|t| t.name.as_str())
            .collect();
        let with_entry = matrices
            .iter()
            .filter(|n| entries.iter().any(|e| e.0 == **n))
            .count();
        assert_eq!(count("checked="), matrices.len(), "{summary}");
        assert_eq!(count("weighted="), with_entry, "{summary}");
        assert!(count("differs_from_plain=") > 0, "{summary}");
        // llama-quantize's record of the imatrix.
        let q = GgufFile::open(&out).unwrap();
        let get = |k: &str| q.get(k).unwrap_or_else(|| panic!("{ty}: no {k}"));
        assert_eq!(get("quantize.imatrix.file").as_str(), Some(s(&dat)));
        assert_eq!(
            get("quantize.imatrix.dataset").as_str(),
            Some("calibration.txt")
        );
        assert_eq!(
            get("quantize.imatrix.entries_count").as_u64(),
            Some(entries.len() as u64)
        );
        assert_eq!(get("quantize.imatrix.chunks_count").as_u64(), Some(12));
    }
}

/// 8 layers of 32-column rows: enough layers for the ffn_down rules.
const EIGHT_LAYERS: SyntheticShape = SyntheticShape {
    embd: 32,
    ff: 64,
    vocab: 64,
    layers: 8,
    heads: 4,
    kv_heads: 4,
};

#[test]
fn imatrix_changes_the_q4_0_mix_like_llama_quantize() {
    let dir = tempfile::tempdir().unwrap();
    let model = synthetic_model(dir.path(), &EIGHT_LAYERS);
    let dat = dir.path().join("imatrix.dat");
    write_dat(&dat, &entries_for(&model, ""), None);
    let ffn_down_types = |extra: &[&str], out: &str| {
        let out = dir.path().join(out);
        let mut args = vec!["quantize", s(&model), s(&out), "q4_0", "--quiet"];
        args.extend(extra);
        crate::common::llq_ok(&args);
        let q = GgufFile::open(&out).unwrap();
        let ty = |name: &str| q.tensor(name).unwrap().ty.name().to_string();
        (ty("blk.0.ffn_down.weight"), ty("blk.1.ffn_down.weight"))
    };
    // With an imatrix, the first eighth of the ffn_down tensors get Q4_1 in a Q4_0 file.
    assert_eq!(
        ffn_down_types(&["--imatrix", s(&dat)], "with.gguf"),
        ("Q4_1".to_string(), "Q4_0".to_string())
    );
    assert_eq!(
        ffn_down_types(&[], "without.gguf"),
        ("Q4_0".to_string(), "Q4_0".to_string())
    );
    // And the rounding of those 32-column rows is ggml's too.
    if let Some(py) = python() {
        let out = dir.path().join("with.gguf");
        println!(
            "{}",
            run_py(&py, "imatrix_oracle.py", &[s(&model), s(&out), s(&dat)])
        );
    }
}

/// llq must refuse: exit 1, one `llq: error:` line naming the imatrix file and each needle, no
/// OUT, no panic.
fn assert_refused(args: &[&str], out: &Path, dat: &Path, needles: &[&str]) {
    let run = llq(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("llq: error: "), "{stderr}");
    assert!(lines[0].contains(s(dat)), "file not named: {stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from: {stderr}");
    }
    assert!(!out.exists(), "{} was written", out.display());
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".") || n.contains("out"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn imatrix_that_does_not_fit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = f32_model(d);
    let out = d.join("out.gguf");
    let hf = fixture("hf");
    let quantize = |dat: &Path, ty: &str| {
        vec![
            "quantize".to_string(),
            s(&model).into(),
            s(&out).into(),
            ty.into(),
            "--imatrix".into(),
            s(dat).into(),
            "--quiet".into(),
        ]
    };
    let convert = |dat: &Path| {
        vec![
            "convert".to_string(),
            s(&hf).into(),
            "-o".into(),
            s(&out).into(),
            "-t".into(),
            "q4_k_m".into(),
            "--imatrix".into(),
            s(dat).into(),
            "--quiet".into(),
        ]
    };
    let refuse = |args: Vec<String>, dat: &Path, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_refused(&args, &out, dat, needles);
    };

    // A wrong size for one tensor (an imatrix of another model of the same family).
    let mut entries = entries_for(&model, "");
    let i = entries
        .iter()
        .position(|e| e.0 == "blk.2.ffn_down.weight")
        .unwrap();
    entries[i].2.truncate(256);
    let wrong_size = d.join("wrong-size.dat");
    write_dat(&wrong_size, &entries, None);
    for args in [quantize(&wrong_size, "q4_0"), convert(&wrong_size)] {
        refuse(args, &wrong_size, &["blk.2.ffn_down.weight", "256", "416"]);
    }

    // Names of another architecture: nothing matches.
    let foreign = d.join("foreign.dat");
    write_dat(
        &foreign,
        &[("model.layers.0.self_attn.q_proj".into(), 1, vec![1.0; 256])],
        None,
    );
    refuse(
        quantize(&foreign, "q4_k_m"),
        &foreign,
        &["none of its 1 entries"],
    );

    // Not an imatrix, truncated, lying counts, missing.
    let text = d.join("notes.dat");
    std::fs::write(&text, "hello, this is text\n").unwrap();
    refuse(quantize(&text, "q4_0"), &text, &[]);
    let good = d.join("good.dat");
    write_dat(&good, &entries_for(&model, ""), Some((3, "x.txt")));
    let bytes = std::fs::read(&good).unwrap();
    let truncated = d.join("truncated.dat");
    for cut in [1, 4, 9, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        refuse(quantize(&truncated, "q4_0"), &truncated, &[]);
    }
    let lying = d.join("lying.dat");
    let mut b = bytes.clone();
    b[..4].copy_from_slice(&1_000_000i32.to_le_bytes());
    std::fs::write(&lying, &b).unwrap();
    refuse(quantize(&lying, "q4_0"), &lying, &["1000000 entries"]);
    let nan = d.join("nan.dat");
    write_dat(
        &nan,
        &[("output.weight".into(), 1, vec![f32::NAN; 256])],
        None,
    );
    refuse(quantize(&nan, "q4_0"), &nan, &["output.weight", "NaN"]);
    let missing = d.join("does-not-exist.dat");
    refuse(quantize(&missing, "q4_0"), &missing, &[]);
}

/// The whole file, mix rules included, equals llama.cpp's llama_model_quantize given the same
/// imatrix (through llama_model_quantize_params.imatrix, as llama-quantize passes it).
#[test]
fn equals_llama_model_quantize_with_the_same_imatrix() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (i, (model, types)) in [
        (
            f32_model(dir.path()),
            &[
                "Q4_0", "Q4_K_M", "Q3_K_M", "Q6_K", "Q2_K", "IQ4_XS", "IQ4_NL",
            ][..],
        ),
        (
            synthetic_model(dir.path(), &EIGHT_LAYERS),
            &["Q4_0", "Q5_0", "IQ4_XS"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dat = dir.path().join("imatrix.dat");
        write_dat(
            &dat,
            &entries_for(&model, "blk.1.attn_k.weight"),
            Some((5, "t.txt")),
        );
        let ours = dir.path().join(format!("ours{i}"));
        quantize_with_imatrix_like_llama_cpp(&py, &model, &dat, &ours, types);
    }
}
