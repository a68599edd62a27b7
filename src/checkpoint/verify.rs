//! `llq verify DIR`: check a checkpoint folder's integrity before converting it.
//!
//! * Meta folders: every file listed in `checklist.chk` (`md5sum` output: `HEX  NAME`) exists
//!   and has that MD5;
//! * Hugging Face folders: every shard named by `model.safetensors.index.json` exists, parses,
//!   and holds exactly the tensors the index assigns to it (a lone `model.safetensors` must
//!   parse).
//!
//! A folder with neither is an error: there is nothing to check it against.

use crate::error::{Error, Result};
use llq_formats::safetensors;
use md5::{Digest, Md5};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

const CHECKLIST: &str = "checklist.chk";
const INDEX: &str = "model.safetensors.index.json";
const SINGLE: &str = "model.safetensors";

/// What was checked: one line per file, for the user.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub checked: Vec<String>,
}

/// Check `dir`; the first problem is an error naming the file.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    if !dir.is_dir() {
        return Err(Error::file(
            dir,
            "not a folder (verify takes a checkpoint folder)",
        ));
    }
    let mut report = VerifyReport::default();
    let checklist = dir.join(CHECKLIST);
    let index = dir.join(INDEX);
    if checklist.exists() {
        check_md5_list(dir, &checklist, &mut report)?;
    }
    if index.exists() {
        check_index(dir, &index, &mut report)?;
    } else if dir.join(SINGLE).exists() {
        let path = dir.join(SINGLE);
        let n = safetensors::open(&path)?.tensors.len();
        report
            .checked
            .push(format!("{SINGLE}: {n} tensors, header OK"));
    }
    if report.checked.is_empty() && !checklist.exists() {
        return Err(Error::file(
            dir,
            format!("nothing to verify: no {CHECKLIST}, {INDEX} or {SINGLE}"),
        ));
    }
    Ok(report)
}

/// A name from a checklist or index must be a plain file in the folder.
fn plain_name(list: &Path, name: &str) -> Result<()> {
    let p = Path::new(name);
    let plain = p.components().count() == 1
        && matches!(p.components().next(), Some(std::path::Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(Error::file(
            list,
            format!("{name:?} is not a file name in this folder"),
        ))
    }
}

fn check_md5_list(dir: &Path, list: &Path, report: &mut VerifyReport) -> Result<()> {
    let text = std::fs::read_to_string(list).map_err(|e| Error::io(list, "cannot read", e))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || Error::file(list, format!("line {}: expected `MD5  FILE`", i + 1));
        let (hex, name) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let name = name.trim_start().trim_start_matches('*').trim_end();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
            return Err(bad());
        }
        plain_name(list, name)?;
        let path = dir.join(name);
        if !path.is_file() {
            return Err(Error::file(
                &path,
                format!("listed in {CHECKLIST} but missing"),
            ));
        }
        let got = md5_of(&path)?;
        if !got.eq_ignore_ascii_case(hex) {
            return Err(Error::file(
                &path,
                format!("MD5 {got} does not match {CHECKLIST} ({hex}): the file is corrupt"),
            ));
        }
        report.checked.push(format!("{name}: MD5 OK"));
        n += 1;
    }
    if n == 0 {
        return Err(Error::file(list, "lists no files"));
    }
    Ok(())
}

fn md5_of(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, "cannot open", e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io(path, "cannot read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn check_index(dir: &Path, index: &Path, report: &mut VerifyReport) -> Result<()> {
    let map = safetensors::read_index(index)?;
    let mut by_shard: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (tensor, shard) in &map {
        by_shard
            .entry(shard.as_str())
            .or_default()
            .insert(tensor.as_str());
    }
    for (shard, want) in &by_shard {
        plain_name(index, shard)?;
        let path = dir.join(shard);
        if !path.is_file() {
            return Err(Error::file(&path, format!("named by {INDEX} but missing")));
        }
        let file = safetensors::open(&path)?;
        let have: BTreeSet<&str> = file.tensors.iter().map(|t| t.name.as_str()).collect();
        if let Some(missing) = want.difference(&have).next() {
            return Err(Error::file(
                &path,
                format!("{INDEX} places tensor {missing:?} here but the shard lacks it"),
            ));
        }
        if let Some(extra) = have.difference(want).next() {
            return Err(Error::file(
                &path,
                format!("holds tensor {extra:?}, which {INDEX} does not assign to this shard"),
            ));
        }
        report
            .checked
            .push(format!("{shard}: {} tensors match the index", have.len()));
    }
    Ok(())
}
