//! `llq plan`: every file type's size is exactly what `llq convert` writes.

use crate::common::*;

fn plan_rows(src: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["plan", src, "--json", "--ctx", "512", "--ram", "20MiB"];
    args.extend_from_slice(extra);
    let j: serde_json::Value = serde_json::from_str(&llq_ok(&args)).unwrap();
    j["types"].as_array().unwrap().clone()
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
    for src in [fixture("hf"), fixture("meta"), f32.clone()] {
        let rows = plan_rows(s(&src), &[]);
        assert_eq!(rows.len(), 17);
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
            let size = std::fs::metadata(&out).unwrap().len();
            assert_eq!(row["file_bytes"], size, "{} {ty}", src.display());
            // KV: 2 (K, V) × 4 layers × 512 positions × 128 (4 kv heads × 32) × 2 bytes (F16).
            assert_eq!(row["kv_bytes"], 2 * 4 * 512 * 128 * 2);
            let total = row["total_bytes"].as_u64().unwrap();
            assert_eq!(row["fits"], total <= 20 << 20);
        }
    }
}

#[test]
fn measure_adds_kld_and_top1() {
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
    assert!(get("Q2_K", "kld_mean") > get("Q8_0", "kld_mean"));
    assert!(get("Q8_0", "kld_mean") > 0.0);
}

#[test]
fn bad_ram_and_source_exit_2() {
    let out = llq(&["plan", s(&fixture("hf")), "--ram", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lots"));
    let out = llq(&["plan", "/nonexistent/model"]);
    assert_eq!(out.status.code(), Some(2));
}
