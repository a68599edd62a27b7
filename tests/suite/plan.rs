//! `llq plan`: every file type's size is exactly what `llq convert` writes, its bits per weight
//! are the written tensors' bits over their weights, the KV cache is the F16 formula over
//! config.json's dimensions, total = file + KV and `fits` compares total with --ram (some types
//! fit, some do not); `--measure` reports what `llq compare` reports for the same files.

use crate::common::*;
use llq_formats::gguf::GgufFile;

const CTX: u64 = 512;
/// With the 1 MiB KV cache, the 2- to 6-bit types fit (Q6_K: 2.94 MiB), Q8_0 (3.38 MiB) and
/// the 16- and 32-bit types do not.
const RAM: u64 = 3 << 20;

fn plan_rows(src: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let (ctx, ram) = (CTX.to_string(), format!("{}MiB", RAM >> 20));
    let mut args = vec!["plan", src, "--json", "--ctx", &ctx, "--ram", &ram];
    args.extend_from_slice(extra);
    let j: serde_json::Value = serde_json::from_str(&llq_ok(&args)).unwrap();
    j["types"].as_array().unwrap().clone()
}

/// The F16 KV cache of the fixture at CTX positions, from its config.json: K and V, every
/// layer, every position, n_kv_heads × head_dim values of 2 bytes.
fn kv_bytes_from_config() -> u64 {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("hf/config.json")).unwrap()).unwrap();
    let n = |k: &str| {
        config[k]
            .as_u64()
            .unwrap_or_else(|| panic!("config.json {k}"))
    };
    let head_dim = config["head_dim"]
        .as_u64()
        .unwrap_or(n("hidden_size") / n("num_attention_heads"));
    2 * n("num_hidden_layers") * CTX * n("num_key_value_heads") * head_dim * 2
}

#[test]
fn sizes_equal_the_files_convert_writes() {
    let dir = tempfile::tempdir().unwrap();
    let f32 = dir.path().join("src-f32.gguf");
    llq_ok(&[
        "convert",
        s(&fixture("meta")),
        "-o",
        s(&f32),
        "-t",
        "f32",
        "--quiet",
    ]);
    let kv = kv_bytes_from_config();
    for src in [fixture("hf"), fixture("meta"), f32.clone()] {
        let rows = plan_rows(s(&src), &[]);
        assert_eq!(rows.len(), llq_types::FileType::COUNT);
        let mut fits = [0, 0];
        for row in rows {
            let ty = row["file_type"].as_str().unwrap();
            let out = dir.path().join(format!("{ty}.gguf"));
            llq_ok(&[
                "convert",
                s(&src),
                "-o",
                s(&out),
                "-t",
                ty,
                "--quiet",
                "--force",
            ]);
            let what = format!("{} {ty}", src.display());
            let size = std::fs::metadata(&out).unwrap().len();
            assert_eq!(row["file_bytes"], size, "{what}");
            // Bits per weight: the written tensors' data bits over their element count.
            let file = GgufFile::open(&out).unwrap();
            let bits: u64 = file
                .tensors
                .iter()
                .map(|t| 8 * file.tensor_data(t).len() as u64)
                .sum();
            let weights: u64 = file
                .tensors
                .iter()
                .map(|t| t.dims.iter().product::<u64>())
                .sum();
            let bpw = row["bpw"].as_f64().unwrap();
            let want = bits as f64 / weights as f64;
            assert!(
                (bpw - want).abs() <= 1e-12 * want,
                "{what}: bpw {bpw} vs {want}"
            );
            assert_eq!(row["kv_bytes"], kv, "{what}");
            let total = size + kv;
            assert_eq!(row["total_bytes"], total, "{what}");
            assert_eq!(row["fits"], total <= RAM, "{what}");
            fits[usize::from(total <= RAM)] += 1;
        }
        assert!(fits[0] > 0 && fits[1] > 0, "--ram splits nothing: {fits:?}");
    }
}

/// `--measure` converts each type and compares it with the source over the text: its KLD and
/// top-1 are `llq compare`'s on the same files and chunks (which tests/suite/compare.rs checks
/// against numpy over llq's and llama.cpp's logits).
#[test]
fn measure_reports_what_compare_reports() {
    let dir = tempfile::tempdir().unwrap();
    let Some(text) = heldout_text() else {
        return;
    };
    let path = dir.path().join("heldout.txt");
    std::fs::write(&path, text).unwrap();
    let rows = plan_rows(
        s(&fixture("hf")),
        &[
            "--measure",
            s(&path),
            "--measure-ctx",
            "128",
            "--chunks",
            "1",
        ],
    );
    let get = |ty: &str, k: &str| {
        rows.iter().find(|r| r["file_type"] == ty).unwrap()[k]
            .as_f64()
            .unwrap()
    };
    assert_eq!(get("F32", "kld_mean"), 0.0);
    assert_eq!(get("F32", "top1"), 1.0);
    for ty in ["Q8_0", "Q4_K_M", "Q2_K"] {
        let q = dir.path().join(format!("{ty}.gguf"));
        llq_ok(&[
            "convert",
            s(&fixture("hf")),
            "-o",
            s(&q),
            "-t",
            ty,
            "--quiet",
        ]);
        let json = dir.path().join(format!("{ty}.json"));
        llq_ok(&[
            "compare",
            s(&fixture("hf")),
            s(&q),
            "-f",
            s(&path),
            "--ctx",
            "128",
            "--chunks",
            "1",
            "--quiet",
            "--json",
            s(&json),
        ]);
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        for key in ["kld_mean", "top1"] {
            let w = want[key].as_f64().unwrap();
            println!("{ty} {key}: plan {} compare {w}", get(ty, key));
            assert_eq!(get(ty, key), w, "{ty} {key}");
        }
        assert!(get(ty, "kld_mean") > 0.0, "{ty}");
    }
    assert!(get("Q2_K", "kld_mean") > get("Q4_K_M", "kld_mean"));
    assert!(get("Q4_K_M", "kld_mean") > get("Q8_0", "kld_mean"));
}

#[test]
fn bad_ram_and_source_exit_2() {
    let out = llq(&["plan", s(&fixture("hf")), "--ram", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lots"));
    let out = llq(&["plan", "/nonexistent/model"]);
    assert_eq!(out.status.code(), Some(2));
}
