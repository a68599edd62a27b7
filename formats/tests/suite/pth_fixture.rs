//! The tiny-llama Meta checkpoints (fixtures/gen/generate.py, real torch.save of a trained
//! model): every tensor's name, shape and dtype, storage sharing in the single file, and the
//! two model-parallel shards reassembling to exactly the single file's bytes.

// In a `pth` module so `cargo test -p llq-formats pth` selects these tests.
mod pth {
    use llq_formats::{pth, DType, MappedTensors};

    const DIM: usize = 256;
    const LAYERS: usize = 4;
    const HEADS: usize = 8;
    const KV_HEADS: usize = 4;
    const HEAD_DIM: usize = DIM / HEADS;
    const VOCAB: usize = 512;
    const FFN: usize = 416;

    fn open(rel: &str) -> MappedTensors {
        let root = llq_testsupport::workspace_root().join("fixtures/tiny-llama");
        pth::open(&root.join(rel)).unwrap()
    }

    /// Meta's names and shapes, in the order generate.py saves them.
    fn expected() -> Vec<(String, Vec<usize>)> {
        let mut out = vec![
            ("tok_embeddings.weight".to_string(), vec![VOCAB, DIM]),
            ("norm.weight".into(), vec![DIM]),
            ("output.weight".into(), vec![VOCAB, DIM]),
        ];
        for i in 0..LAYERS {
            let l = |s: &str| format!("layers.{i}.{s}.weight");
            out.extend([
                (l("attention.wq"), vec![HEADS * HEAD_DIM, DIM]),
                (l("attention.wk"), vec![KV_HEADS * HEAD_DIM, DIM]),
                (l("attention.wv"), vec![KV_HEADS * HEAD_DIM, DIM]),
                (l("attention.wo"), vec![DIM, HEADS * HEAD_DIM]),
                (l("feed_forward.w1"), vec![FFN, DIM]),
                (l("feed_forward.w2"), vec![DIM, FFN]),
                (l("feed_forward.w3"), vec![FFN, DIM]),
                (l("attention_norm"), vec![DIM]),
                (l("ffn_norm"), vec![DIM]),
            ]);
        }
        out.push(("rope.freqs".into(), vec![HEAD_DIM / 2]));
        out
    }

    #[test]
    fn single_file_names_shapes_dtypes() {
        let m = open("meta/consolidated.00.pth");
        let got: Vec<(String, Vec<usize>)> = m
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        assert_eq!(got, expected());
        assert!(m.tensors.iter().all(|t| t.dtype == DType::BF16));
    }

    #[test]
    fn single_file_views_share_storages() {
        let m = open("meta/consolidated.00.pth");
        // All layer norms are consecutive views of one flat storage.
        let norms: Vec<_> = (0..LAYERS)
            .flat_map(|i| ["attention_norm", "ffn_norm"].map(|n| format!("layers.{i}.{n}.weight")))
            .map(|n| m.get(&n).unwrap().range.clone())
            .collect();
        for pair in norms.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        // Layer 0's wk and wv: one storage, wv right after wk.
        let wk = m.get("layers.0.attention.wk.weight").unwrap().range.clone();
        let wv = m.get("layers.0.attention.wv.weight").unwrap().range.clone();
        assert_eq!(wk.end, wv.start);
    }

    /// Which dim generate.py split a tensor on (None: replicated).
    fn split_dim(name: &str) -> Option<usize> {
        let dim0 = ["wq", "wk", "wv", "w1", "w3"];
        let last = name.trim_end_matches(".weight").rsplit('.').next().unwrap();
        match name {
            "output.weight" => Some(0),
            "tok_embeddings.weight" => Some(1),
            _ if dim0.contains(&last) => Some(0),
            _ if ["wo", "w2"].contains(&last) => Some(1),
            _ => None,
        }
    }

    #[test]
    fn two_shards_reassemble_to_the_single_file() {
        let full = open("meta/consolidated.00.pth");
        let shards = [
            open("meta-2shard/consolidated.00.pth"),
            open("meta-2shard/consolidated.01.pth"),
        ];
        for t in &full.tensors {
            let parts = shards.each_ref().map(|s| s.get(&t.name).unwrap());
            assert!(parts.iter().all(|p| p.dtype == DType::BF16), "{}", t.name);
            let bytes = [shards[0].data(parts[0]), shards[1].data(parts[1])];
            let joined: Vec<u8> = match split_dim(&t.name) {
                None => {
                    assert_eq!(bytes[0], bytes[1], "{} replicated", t.name);
                    bytes[0].to_vec()
                }
                Some(0) => bytes.concat(),
                Some(_) => {
                    // Split on dim 1: each full row is shard 0's row then shard 1's.
                    let rows = t.shape[0];
                    let (a, b) = (bytes[0].len() / rows, bytes[1].len() / rows);
                    (0..rows)
                        .flat_map(|r| {
                            [&bytes[0][r * a..(r + 1) * a], &bytes[1][r * b..(r + 1) * b]]
                        })
                        .flatten()
                        .copied()
                        .collect()
                }
            };
            assert_eq!(joined, full.data(t), "{}", t.name);
        }
    }
}
