//! The files a conversion writes: one GGUF, or a split set in llama.cpp's gguf-split convention
//! (`OUT-00001-of-0000N.gguf` …, `OUT` without its `.gguf`), each with the key/values and tensor
//! infos it holds.

use llq_formats::gguf::split::{self, SplitLimit, MAX_SHARDS};
use llq_formats::gguf::{TensorSpec, Value};
use std::path::{Path, PathBuf};

/// One file to write.
pub struct Part {
    pub path: PathBuf,
    pub kv: Vec<(String, Value)>,
    pub specs: Vec<TensorSpec>,
}

/// The files for `specs` (whose data sizes are `sizes`): `out` itself, or with `limit` a split
/// set, the model's key/values in the first file and the split keys in every file. `None`
/// when the set would need more files than a split set can count.
pub fn parts(
    out: &Path,
    kv: &[(String, Value)],
    specs: &[TensorSpec],
    sizes: &[u64],
    limit: Option<SplitLimit>,
) -> Option<Vec<Part>> {
    let Some(limit) = limit else {
        return Some(vec![Part {
            path: out.to_path_buf(),
            kv: kv.to_vec(),
            specs: specs.to_vec(),
        }]);
    };
    let counts = split::plan(sizes, &limit);
    let n = counts.len();
    if n > MAX_SHARDS {
        return None;
    }
    let prefix = match out.extension() {
        Some(x) if x.eq_ignore_ascii_case("gguf") => out.with_extension(""),
        _ => out.to_path_buf(),
    };
    let mut first = 0;
    Some(
        counts
            .iter()
            .enumerate()
            .map(|(i, &count)| {
                let mut part_kv = if i == 0 { kv.to_vec() } else { Vec::new() };
                part_kv.extend(split::split_keys(i, n, specs.len()));
                let part = Part {
                    path: split::shard_path(&prefix, i, n),
                    kv: part_kv,
                    specs: specs[first..first + count].to_vec(),
                };
                first += count;
                part
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use llq_types::GgmlType;

    #[test]
    fn a_split_set_keeps_the_metadata_first_and_counts_everywhere() {
        let specs: Vec<TensorSpec> = (0..5)
            .map(|i| TensorSpec {
                name: format!("t{i}"),
                dims: vec![8],
                ty: GgmlType::F32,
            })
            .collect();
        let kv = vec![("general.name".to_string(), Value::String("m".into()))];
        let parts = parts(
            Path::new("dir/m.gguf"),
            &kv,
            &specs,
            &[32; 5],
            Some(SplitLimit::Tensors(2)),
        )
        .unwrap();
        let names: Vec<_> = parts.iter().map(|p| p.path.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "dir/m-00001-of-00003.gguf",
                "dir/m-00002-of-00003.gguf",
                "dir/m-00003-of-00003.gguf"
            ]
        );
        assert_eq!(parts[0].kv.len(), 4);
        assert_eq!(parts[2].kv.len(), 3);
        assert_eq!(parts[2].specs.len(), 1);
        let one = super::parts(Path::new("m.gguf"), &kv, &specs, &[32; 5], None).unwrap();
        assert_eq!((one.len(), one[0].path.as_path()), (1, Path::new("m.gguf")));
    }
}
