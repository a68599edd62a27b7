//! Checkpoints written by real torch.save (tests/data/pth/make.py): names, dtypes, shapes and
//! decoded values against the JSON make.py wrote, plus the files the reader must refuse and
//! truncations of a real file at every structural boundary.

// In a `pth` module so `cargo test -p llq-formats pth` selects these tests.
mod pth {
    use llq_formats::pth;
    use llq_formats::{DType, MappedTensors, TensorEntry};
    use std::path::PathBuf;

    fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/pth")
            .join(name)
    }

    fn decode(m: &MappedTensors, t: &TensorEntry) -> Vec<f32> {
        let widen: fn([u8; 2]) -> f32 = match t.dtype {
            DType::BF16 => |b| half::bf16::from_le_bytes(b).to_f32(),
            DType::F16 => |b| half::f16::from_le_bytes(b).to_f32(),
            DType::F32 => {
                return m
                    .data(t)
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect()
            }
            other => panic!("unexpected dtype {other:?}"),
        };
        let out: Vec<f32> = m
            .data(t)
            .chunks_exact(2)
            .map(|c| widen([c[0], c[1]]))
            .collect();
        assert_eq!(out.len(), t.numel());
        out
    }

    /// The error opening a file that must be refused.
    fn open_err(name: &str) -> String {
        pth::open(&data(name))
            .err()
            .expect("file was accepted")
            .to_string()
    }

    /// Open NAME.pth and compare every tensor, in order, with NAME.json.
    fn check_against_json(name: &str) -> MappedTensors {
        let m = pth::open(&data(&format!("{name}.pth"))).unwrap();
        let text = std::fs::read_to_string(data(&format!("{name}.json"))).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let expected = json["tensors"].as_array().unwrap();
        assert_eq!(m.tensors.len(), expected.len(), "{name}: tensor count");
        for (t, e) in m.tensors.iter().zip(expected) {
            assert_eq!(t.name, e["name"].as_str().unwrap(), "{name}: order");
            assert_eq!(
                t.dtype.name(),
                e["dtype"].as_str().unwrap(),
                "{name}: {}",
                t.name
            );
            let shape: Vec<usize> = e["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(t.shape, shape, "{name}: {}", t.name);
            assert_eq!(t.range.len(), t.numel() * t.dtype.size());
            let want: Vec<f32> = e["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(decode(&m, t), want, "{name}: {} values", t.name);
        }
        m
    }

    #[test]
    fn bf16_f16_f32_and_0d_tensors() {
        let m = check_against_json("dtypes");
        let scalar = m.get("scalar").unwrap();
        assert_eq!(
            (scalar.shape.as_slice(), scalar.dtype),
            (&[][..], DType::F32)
        );
        assert_eq!(m.get("norm.f32").unwrap().shape, [7]);
    }

    #[test]
    fn views_share_one_storage_at_offsets() {
        let m = check_against_json("shared");
        let full = m.get("full").unwrap().range.clone();
        // Element size 2: row 1 starts 4 elements in, rows 2..4 start 8 elements in.
        assert_eq!(
            m.get("row1").unwrap().range,
            full.start + 8..full.start + 16
        );
        assert_eq!(
            m.get("rows2_3").unwrap().range,
            full.start + 16..full.start + 32
        );
    }

    #[test]
    fn protocol_4_ordered_dict_and_parameter() {
        check_against_json("proto4");
    }

    #[test]
    fn module_state_dict_with_metadata() {
        check_against_json("module");
    }

    #[test]
    fn storages_are_64_byte_aligned() {
        let m = pth::open(&data("dtypes.pth")).unwrap();
        for t in &m.tensors {
            assert_eq!(m.data(t).as_ptr() as usize % 64, 0, "{}", t.name);
        }
    }

    #[test]
    fn non_contiguous_tensor_is_refused() {
        let err = open_err("noncontig.pth");
        assert!(err.contains("\"t\" is not contiguous"), "{err}");
    }

    #[test]
    fn legacy_format_is_refused() {
        let err = open_err("legacy.pth");
        assert!(
            err.contains("unsupported legacy (non-zip) torch format"),
            "{err}"
        );
        assert!(err.contains("torch >= 1.6"), "{err}");
    }

    /// Offsets where a zip structure starts or ends: every signature, plus the data around them.
    fn structural_offsets(bytes: &[u8]) -> Vec<usize> {
        let sigs: [&[u8]; 5] = [
            b"PK\x03\x04",
            b"PK\x01\x02",
            b"PK\x06\x06",
            b"PK\x06\x07",
            b"PK\x05\x06",
        ];
        let mut out = Vec::new();
        for at in 0..bytes.len() {
            if sigs.iter().any(|s| bytes[at..].starts_with(s)) {
                out.extend([at, at + 1, at + 4, at + 22, at + 30, at + 46]);
            }
        }
        out
    }

    #[test]
    fn truncated_files_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["dtypes.pth", "proto4.pth", "shared.pth"] {
            let bytes = std::fs::read(data(name)).unwrap();
            let mut cuts: Vec<usize> = (0..bytes.len()).step_by(97).collect();
            cuts.extend(structural_offsets(&bytes));
            // Every tensor's data boundaries too.
            for t in &pth::open(&data(name)).unwrap().tensors {
                cuts.extend([
                    t.range.start,
                    t.range.start + 1,
                    t.range.end - 1,
                    t.range.end,
                ]);
            }
            let path = dir.path().join(name);
            for cut in cuts.into_iter().filter(|&c| c < bytes.len()) {
                std::fs::write(&path, &bytes[..cut]).unwrap();
                assert!(
                    pth::open(&path).is_err(),
                    "{name} cut at {cut} was accepted"
                );
            }
        }
    }

    #[test]
    fn every_single_byte_corruption_is_handled() {
        // Not all corruptions are detectable (tensor bytes are just data), but none may panic.
        let bytes = std::fs::read(data("proto4.pth")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pth");
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0xff;
            std::fs::write(&path, &b).unwrap();
            let _ = pth::open(&path);
        }
    }
}
