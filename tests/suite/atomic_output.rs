//! Atomic outputs: a conversion that fails mid-write — a file size limit (`ulimit -f`), SIGINT
//! or SIGTERM — leaves neither OUT nor a temporary file, and an existing OUT survives intact.
//! (A poisoned NaN tensor is covered by `bad_input::nonfinite_weights_name_the_tensor`.)
#![cfg(unix)]

use crate::common::{fixture, s};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn file_size_limit_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    // F32 output of the fixture is ~9 MB; sh counts `ulimit -f` in 512- or 1024-byte blocks,
    // so 2000 blocks (1–2 MB) stops the write part-way.
    let script = format!(
        "ulimit -f 2000; exec '{}' convert '{}' -o '{}' -t f32 --quiet",
        env!("CARGO_BIN_EXE_llq"),
        s(&fixture("hf")),
        s(&out)
    );
    let run = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("llq: error: "), "{stderr}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // An existing OUT is kept as it was when the replacement fails.
    std::fs::write(&out, b"previous").unwrap();
    let script = script.replace("--quiet", "--quiet --force");
    let run = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(entries(dir.path()), ["out.gguf"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
}

/// A Hugging Face folder with one layer of 2048 × 5632 bf16 weights (~110 MB): converting it
/// to Q4_K_M takes long enough to be interrupted. Made once per test binary.
fn big_checkpoint() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (n_embd, n_ff, n_vocab) = (2048usize, 5632usize, 512usize);
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture("hf/config.json")).unwrap()).unwrap();
        let c = config.as_object_mut().unwrap();
        c.insert("hidden_size".into(), n_embd.into());
        c.insert("intermediate_size".into(), n_ff.into());
        c.insert("num_hidden_layers".into(), 1.into());
        c.insert("num_attention_heads".into(), 16.into());
        c.insert("num_key_value_heads".into(), 16.into());
        c.insert("head_dim".into(), 128.into());
        c.insert("tie_word_embeddings".into(), true.into());
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        std::fs::copy(
            fixture("hf/tokenizer.model"),
            dir.path().join("tokenizer.model"),
        )
        .unwrap();

        let p = "model.layers.0.";
        let shapes: Vec<(String, Vec<usize>)> = vec![
            ("model.embed_tokens.weight".into(), vec![n_vocab, n_embd]),
            ("model.norm.weight".into(), vec![n_embd]),
            (format!("{p}input_layernorm.weight"), vec![n_embd]),
            (format!("{p}post_attention_layernorm.weight"), vec![n_embd]),
            (format!("{p}self_attn.q_proj.weight"), vec![n_embd, n_embd]),
            (format!("{p}self_attn.k_proj.weight"), vec![n_embd, n_embd]),
            (format!("{p}self_attn.v_proj.weight"), vec![n_embd, n_embd]),
            (format!("{p}self_attn.o_proj.weight"), vec![n_embd, n_embd]),
            (format!("{p}mlp.gate_proj.weight"), vec![n_ff, n_embd]),
            (format!("{p}mlp.up_proj.weight"), vec![n_ff, n_embd]),
            (format!("{p}mlp.down_proj.weight"), vec![n_embd, n_ff]),
        ];
        let mut header = serde_json::Map::new();
        let mut offset = 0usize;
        for (name, shape) in &shapes {
            let n = shape.iter().product::<usize>() * 2;
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}),
            );
            offset += n;
        }
        let header = serde_json::Value::Object(header).to_string();
        let mut bytes = Vec::with_capacity(8 + header.len() + offset);
        bytes.extend((header.len() as u64).to_le_bytes());
        bytes.extend(header.as_bytes());
        // Small finite bf16 values of both signs (exponent well below the all-ones of NaN/Inf).
        let mut x = 0x9e37_79b9u32;
        for _ in 0..offset / 2 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let bits = 0x3c00u16 | (x as u16 & 0x80ff);
            bytes.extend(bits.to_le_bytes());
        }
        std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
        dir
    })
    .path()
}

/// Start a Q4_K_M conversion of the big checkpoint, send `signal` once its temporary file
/// exists, and check that it exits without leaving anything behind.
fn interrupted(signal: &str) {
    let src = big_checkpoint();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let mut child = Command::new(env!("CARGO_BIN_EXE_llq"))
        .args(["convert", s(src), "-o", s(&out), "-t", "q4_k_m", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if !entries(dir.path()).is_empty() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("llq finished ({status}) before a temporary file appeared");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no temp file");
        std::thread::sleep(Duration::from_millis(2));
    }
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "llq finished the conversion before {signal} arrived: {stderr}"
    );
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[test]
fn sigint_mid_conversion_leaves_no_output() {
    interrupted("INT");
}

#[test]
fn sigterm_mid_conversion_leaves_no_output() {
    interrupted("TERM");
}
