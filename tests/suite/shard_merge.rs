//! Property: a Meta checkpoint split into model-parallel shards by Meta's rules converts to
//! exactly the tensors of the unsplit checkpoint, for random weights, shapes and shard counts,
//! in the LLaMA 1/2 layout and in Llama 3's (embeddings split on rows).

use crate::common::{fixture, llq_ok, root, s};
use llq_formats::gguf::GgufFile;
use llq_testsupport::pth_writer::{checkpoint, spec, state_dict};
use std::path::Path;

/// How a tensor is split across shards: on rows, on columns, or copied to every shard.
#[derive(Clone, Copy)]
enum Split {
    Rows,
    Cols,
    Replicated,
}

struct Tensor {
    name: String,
    shape: Vec<usize>,
    split: Split,
    /// bf16 bits, row-major.
    data: Vec<u16>,
}

/// xorshift64*: deterministic weights without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A finite bf16 in (-1, 1).
    fn bf16(&mut self) -> u16 {
        let x = (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        (x.to_bits() >> 16) as u16
    }
}

/// LLaMA 1/2 (SentencePiece, embeddings split on columns) or Llama 3 (tiktoken, embeddings
/// split on rows, scaled RoPE): the tokenizer comes from the matching fixture.
#[derive(Clone, Copy)]
enum Family {
    Llama2,
    Llama3,
}

impl Family {
    fn vocab(self) -> usize {
        match self {
            Family::Llama2 => 512,
            Family::Llama3 => 768,
        }
    }

    fn embedding_split(self) -> Split {
        match self {
            Family::Llama2 => Split::Cols,
            Family::Llama3 => Split::Rows,
        }
    }

    fn tokenizer(self) -> std::path::PathBuf {
        match self {
            Family::Llama2 => fixture("meta/tokenizer.model"),
            Family::Llama3 => root().join("fixtures/tiny-llama3/meta/tokenizer.model"),
        }
    }
}

/// A LLaMA's tensors in Meta naming with Meta's split rule for each.
fn model(
    rng: &mut Rng,
    family: Family,
    dim: usize,
    layers: usize,
    kv_dim: usize,
    ffn: usize,
) -> Vec<Tensor> {
    let vocab = family.vocab();
    let mut t = |name: String, shape: &[usize], split| {
        let n = shape.iter().product();
        Tensor {
            name,
            shape: shape.to_vec(),
            split,
            data: (0..n).map(|_| rng.bf16()).collect(),
        }
    };
    let mut out = vec![
        t(
            "tok_embeddings.weight".into(),
            &[vocab, dim],
            family.embedding_split(),
        ),
        t("norm.weight".into(), &[dim], Split::Replicated),
        t("output.weight".into(), &[vocab, dim], Split::Rows),
    ];
    for l in 0..layers {
        let p = |s: &str| format!("layers.{l}.{s}.weight");
        out.push(t(p("attention.wq"), &[dim, dim], Split::Rows));
        out.push(t(p("attention.wk"), &[kv_dim, dim], Split::Rows));
        out.push(t(p("attention.wv"), &[kv_dim, dim], Split::Rows));
        out.push(t(p("attention.wo"), &[dim, dim], Split::Cols));
        out.push(t(p("feed_forward.w1"), &[ffn, dim], Split::Rows));
        out.push(t(p("feed_forward.w2"), &[dim, ffn], Split::Cols));
        out.push(t(p("feed_forward.w3"), &[ffn, dim], Split::Rows));
        out.push(t(p("attention_norm"), &[dim], Split::Replicated));
        out.push(t(p("ffn_norm"), &[dim], Split::Replicated));
    }
    out
}

/// Shard `k` of `n` of a tensor: (shape, bf16 data).
fn shard_of(t: &Tensor, k: usize, n: usize) -> (Vec<usize>, Vec<u16>) {
    match (t.split, t.shape.as_slice()) {
        (Split::Replicated, _) | (_, [_]) => (t.shape.clone(), t.data.clone()),
        (Split::Rows, &[rows, cols]) => {
            let r = rows / n;
            (
                vec![r, cols],
                t.data[k * r * cols..(k + 1) * r * cols].to_vec(),
            )
        }
        (Split::Cols, &[rows, cols]) => {
            let c = cols / n;
            let data = (0..rows)
                .flat_map(|row| t.data[row * cols + k * c..row * cols + (k + 1) * c].to_vec())
                .collect();
            (vec![rows, c], data)
        }
        _ => unreachable!("LLaMA tensors are 1-D or 2-D"),
    }
}

/// Write the model as a Meta folder of `n` shards.
fn write_meta(
    dir: &Path,
    family: Family,
    tensors: &[Tensor],
    n: usize,
    params: &serde_json::Value,
) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..n {
        let mut specs = Vec::new();
        let mut storages = Vec::new();
        for (i, t) in tensors.iter().enumerate() {
            let (shape, data) = shard_of(t, k, n);
            let shape: Vec<u32> = shape.iter().map(|&d| d as u32).collect();
            specs.push(spec(&t.name, &i.to_string(), &shape));
            let bytes: Vec<u8> = data.iter().flat_map(|b| b.to_le_bytes()).collect();
            storages.push((i.to_string(), bytes));
        }
        let storages: Vec<(&str, Vec<u8>)> = storages
            .iter()
            .map(|(key, b)| (key.as_str(), b.clone()))
            .collect();
        let bytes = checkpoint(&state_dict(&specs), &storages, false);
        std::fs::write(dir.join(format!("consolidated.{k:02}.pth")), bytes).unwrap();
    }
    std::fs::write(dir.join("params.json"), params.to_string()).unwrap();
    std::fs::copy(family.tokenizer(), dir.join("tokenizer.model")).unwrap();
}

#[test]
fn split_then_merge_is_the_identity() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // (family, dim, heads, kv heads, layers): head size 16; kv heads ≥ the largest shard count.
    let cases = [
        (Family::Llama2, 128, 8, 4, 2),
        (Family::Llama2, 64, 4, 4, 1),
        (Family::Llama2, 128, 8, 8, 3),
        (Family::Llama3, 64, 4, 4, 2),
    ];
    for (case, &(family, dim, heads, kv_heads, layers)) in cases.iter().enumerate() {
        let ffn: usize = 32 * (2 * 4 * dim / 3usize).div_ceil(32);
        let tensors = model(&mut rng, family, dim, layers, kv_heads * (dim / heads), ffn);
        let mut params = serde_json::json!({
            "dim": dim, "n_layers": layers, "n_heads": heads, "n_kv_heads": kv_heads,
            "vocab_size": -1, "multiple_of": 32, "norm_eps": 1e-5
        });
        if let Family::Llama3 = family {
            params["vocab_size"] = family.vocab().into();
            params["rope_theta"] = 500000.0.into();
            params["use_scaled_rope"] = true.into();
        }
        let root = tempfile::tempdir().unwrap();
        let convert = |n: usize| {
            let src = root.path().join(format!("shards-{n}"));
            write_meta(&src, family, &tensors, n, &params);
            let out = root.path().join(format!("out-{n}.gguf"));
            llq_ok(&[
                "convert",
                s(&src),
                "-o",
                s(&out),
                "--type",
                "bf16",
                "--quiet",
            ]);
            GgufFile::open(&out).unwrap()
        };
        let whole = convert(1);
        // The unsplit file holds the generated weights (2-D tensors stay BF16).
        let wq = whole.tensor("blk.0.attn_q.weight").unwrap();
        let want: Vec<u8> = tensors[3]
            .data
            .iter()
            .flat_map(|b| b.to_le_bytes())
            .collect();
        assert_eq!(whole.tensor_data(wq), want, "case {case}: wq");
        for n in [2, 4] {
            let split = convert(n);
            assert_eq!(split.tensors.len(), whole.tensors.len());
            for t in &whole.tensors {
                let o = split.tensor(&t.name).unwrap();
                assert_eq!(
                    (&o.dims, o.ty),
                    (&t.dims, t.ty),
                    "case {case}, {n} shards: {}",
                    t.name
                );
                assert_eq!(
                    split.tensor_data(o),
                    whole.tensor_data(t),
                    "case {case}, {n} shards: {}",
                    t.name
                );
            }
        }
    }
}
