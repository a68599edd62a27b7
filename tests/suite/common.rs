//! Helpers of llq's integration tests: the built binary, the fixture models, and what several
//! modules compare against. The references themselves (and the skip-or-fail policy when one is
//! missing) come from `llq-testsupport`.

pub use llq_testsupport::{python, run_py, shared, workspace_root as root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path inside `fixtures/tiny-llama/`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures/tiny-llama").join(rel)
}

/// Run the llq binary.
pub fn llq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llq"))
        .args(args)
        .output()
        .expect("run llq")
}

/// Run llq and insist it succeeded; returns stdout.
pub fn llq_ok(args: &[&str]) -> String {
    let out = llq(args);
    assert!(
        out.status.success(),
        "llq {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Run llq and insist it failed with `needle` in its stderr; returns its output.
pub fn llq_fails(args: &[&str], needle: &str) -> Output {
    let out = llq(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "llq {args:?} should fail");
    assert!(
        stderr.contains(needle),
        "llq {args:?}: stderr lacks {needle:?}: {stderr}"
    );
    out
}

/// `llq quantize MODEL --imatrix DAT` to each of `types` in a fresh folder `out`, then
/// `tests/py/llama_quantize_imatrix.py`, which quantizes MODEL with llama.cpp's
/// llama_model_quantize and the same file and fails unless every tensor's bytes are equal.
pub fn quantize_with_imatrix_like_llama_cpp(
    python: &Path,
    model: &Path,
    dat: &Path,
    out: &Path,
    types: &[&str],
) {
    std::fs::create_dir_all(out).unwrap();
    let mut args = vec![s(model), s(dat), s(out)];
    for &ty in types {
        let file = out.join(format!("{ty}.gguf"));
        llq_ok(&[
            "quantize",
            s(model),
            s(&file),
            ty,
            "--imatrix",
            s(dat),
            "--quiet",
        ]);
        args.push(ty);
    }
    println!("{}", run_py(python, "llama_quantize_imatrix.py", &args));
}

/// A file of little-endian f32 values.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// max |a_i − b_i| of two equally long vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "different lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// llama.cpp's logits (every position) for `ids` on `gguf`, through
/// `tests/py/llama3_logits.py` (KV cache in F32, as llq's); `scratch` is a file path it may
/// write.
pub fn llama_cpp_logits(python: &Path, gguf: &Path, ids: &[u32], scratch: &Path) -> Vec<f32> {
    let mut args = vec![s(gguf).to_string(), s(scratch).to_string()];
    args.extend(ids.iter().map(|i| i.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_py(python, "llama3_logits.py", &args);
    read_f32(scratch)
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The corpus split of fixtures/README.md, "Corpus split": (training text, held-out text), cut
/// after the first newline at or after 90 % of the code points. `None` (with a SKIPPED line)
/// without LLQ_SHARED (see `llq_testsupport::missing`).
pub fn corpus_split() -> Option<(String, String)> {
    let corpus = std::fs::read_to_string(shared()?.join("corpus/wikitext-2-test.txt")).unwrap();
    let chars: Vec<char> = corpus.chars().collect();
    let t = chars.len() * 9 / 10;
    let newline = t + chars[t..].iter().position(|&c| c == '\n').unwrap();
    Some((
        chars[..newline + 1].iter().collect(),
        chars[newline + 1..].iter().collect(),
    ))
}

/// The held-out 10 % of the corpus (see [`corpus_split`]).
pub fn heldout_text() -> Option<String> {
    corpus_split().map(|(_, heldout)| heldout)
}

/// The shape of a [`synthetic_model`].
#[derive(Clone, Copy)]
pub struct SyntheticShape {
    pub embd: u64,
    pub ff: u64,
    pub vocab: u64,
    pub layers: u64,
    pub heads: u64,
    pub kv_heads: u64,
}

/// An all-F32 llama GGUF `dir/synthetic.gguf` of `shape` with deterministic uniform weights in
/// [-0.5, 0.5): for the type rules that depend on shapes the fixtures do not have (no
/// tokenizer, so not runnable).
pub fn synthetic_model(dir: &Path, shape: &SyntheticShape) -> PathBuf {
    use llq_formats::gguf::{GgufWriter, TensorSpec, Value};
    use llq_types::GgmlType;
    let SyntheticShape {
        embd,
        ff,
        vocab,
        layers,
        heads,
        kv_heads,
    } = *shape;
    let kv_embd = embd / heads * kv_heads;
    let u32v = |n: u64| Value::U32(n as u32);
    let kv: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("llama.vocab_size".into(), u32v(vocab)),
        ("llama.context_length".into(), u32v(128)),
        ("llama.embedding_length".into(), u32v(embd)),
        ("llama.block_count".into(), u32v(layers)),
        ("llama.feed_forward_length".into(), u32v(ff)),
        ("llama.attention.head_count".into(), u32v(heads)),
        ("llama.attention.head_count_kv".into(), u32v(kv_heads)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
    ];
    let mut specs = vec![
        ("token_embd.weight".to_string(), vec![embd, vocab]),
        ("output_norm.weight".to_string(), vec![embd]),
        ("output.weight".to_string(), vec![embd, vocab]),
    ];
    for l in 0..layers {
        for (suffix, dims) in [
            ("attn_norm.weight", vec![embd]),
            ("attn_q.weight", vec![embd, embd]),
            ("attn_k.weight", vec![embd, kv_embd]),
            ("attn_v.weight", vec![embd, kv_embd]),
            ("attn_output.weight", vec![embd, embd]),
            ("ffn_norm.weight", vec![embd]),
            ("ffn_gate.weight", vec![embd, ff]),
            ("ffn_up.weight", vec![embd, ff]),
            ("ffn_down.weight", vec![ff, embd]),
        ] {
            specs.push((format!("blk.{l}.{suffix}"), dims));
        }
    }
    let specs: Vec<TensorSpec> = specs
        .into_iter()
        .map(|(name, dims)| TensorSpec {
            name,
            dims,
            ty: GgmlType::F32,
        })
        .collect();
    let path = dir.join("synthetic.gguf");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = GgufWriter::new(std::io::BufWriter::new(file), &kv, &specs).unwrap();
    let mut x = 1u32;
    for t in &specs {
        let n: u64 = t.dims.iter().product();
        let data: Vec<u8> = (0..n)
            .flat_map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                ((x >> 8) as f32 / (1 << 24) as f32 - 0.5).to_le_bytes()
            })
            .collect();
        w.write_tensor_data(&data).unwrap();
    }
    use std::io::Write;
    w.finish().unwrap().flush().unwrap();
    path
}
