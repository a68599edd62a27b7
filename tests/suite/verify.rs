//! `llq verify DIR` and `llq convert --verify`: Meta's checklist.chk MD5s and a Hugging Face
//! index against its shards. A damaged folder is refused with one line naming the file, and
//! `convert --verify` then writes nothing.

use crate::common::{fixture, llq, llq_ok, s};
use md5::{Digest, Md5};
use std::path::{Path, PathBuf};

fn copy_fixture(layout: &str, dir: &Path) -> PathBuf {
    let dst = dir.join(layout);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixture(layout)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

fn md5_hex(path: &Path) -> String {
    Md5::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Meta folder with a checklist.chk as Meta ships it (every file but the checklist).
fn meta_with_checklist(dir: &Path) -> PathBuf {
    let src = copy_fixture("meta-2shard", dir);
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let list: String = names
        .iter()
        .map(|n| format!("{}  {n}\n", md5_hex(&src.join(n))))
        .collect();
    std::fs::write(src.join("checklist.chk"), list).unwrap();
    src
}

/// `llq verify` must refuse with one line containing every needle.
fn verify_refused(src: &Path, needles: &[&str]) {
    let run = llq(&["verify", s(src)]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("llq: error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from {}", lines[0]);
    }
    // And convert --verify writes nothing.
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.gguf");
    let run = llq(&["convert", s(src), "-o", s(&out), "--verify", "--quiet"]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0);
}

#[test]
fn meta_checklist_ok_then_corrupt_or_missing() {
    let dir = tempfile::tempdir().unwrap();
    let src = meta_with_checklist(dir.path());
    let stdout = llq_ok(&["verify", s(&src)]);
    assert!(stdout.contains("consolidated.01.pth: MD5 OK"), "{stdout}");
    let out = dir.path().join("out.gguf");
    llq_ok(&["convert", s(&src), "-o", s(&out), "--verify", "--quiet"]);
    assert!(out.exists());

    // One flipped byte in the middle of a shard.
    let shard = src.join("consolidated.01.pth");
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&shard, &bytes).unwrap();
    verify_refused(&src, &["consolidated.01.pth", "MD5", "corrupt"]);

    bytes[mid] ^= 0x01;
    std::fs::write(&shard, &bytes).unwrap();
    std::fs::remove_file(src.join("params.json")).unwrap();
    verify_refused(&src, &["params.json", "missing"]);
}

#[test]
fn meta_checklist_malformed_or_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let src = meta_with_checklist(dir.path());
    std::fs::write(src.join("checklist.chk"), "not a checksum line\n").unwrap();
    verify_refused(&src, &["checklist.chk", "line 1"]);
    std::fs::write(
        src.join("checklist.chk"),
        "d41d8cd98f00b204e9800998ecf8427e  ../etc/passwd\n",
    )
    .unwrap();
    verify_refused(&src, &["checklist.chk", "not a file name"]);
}

#[test]
fn hf_index_ok_then_missing_shard_or_misplaced_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("hf", dir.path());
    let stdout = llq_ok(&["verify", s(&src)]);
    assert!(
        stdout.contains("model-00002-of-00002.safetensors:") && stdout.contains("match the index"),
        "{stdout}"
    );

    // The index moves one tensor to the other shard.
    let index_path = src.join("model.safetensors.index.json");
    let original = std::fs::read_to_string(&index_path).unwrap();
    let mut index: serde_json::Value = serde_json::from_str(&original).unwrap();
    index["weight_map"]["lm_head.weight"] = "model-00001-of-00002.safetensors".into();
    std::fs::write(&index_path, index.to_string()).unwrap();
    verify_refused(&src, &["lm_head.weight", "safetensors"]);

    std::fs::write(&index_path, &original).unwrap();
    std::fs::remove_file(src.join("model-00002-of-00002.safetensors")).unwrap();
    verify_refused(&src, &["model-00002-of-00002.safetensors", "missing"]);
}

#[test]
fn hf_truncated_shard_and_nothing_to_verify() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_fixture("hf", dir.path());
    let shard = src.join("model-00001-of-00002.safetensors");
    let len = std::fs::metadata(&shard).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&shard)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    verify_refused(&src, &["model-00001-of-00002.safetensors"]);

    // A Meta folder without checklist.chk has nothing to check against.
    let meta = copy_fixture("meta", dir.path());
    verify_refused(&meta, &["nothing to verify"]);
}
