//! Crafted checkpoints: a tiny STORED zip writer and pickle builder produce torch-shaped files,
//! then break them one way at a time. The reader must refuse each with a message saying why,
//! never execute a global, and never panic.

// In a `pth` module so `cargo test -p llq-formats pth` selects these tests.
mod pth {
    use llq_formats::pth;
    use llq_formats::MappedTensors;
    use llq_testsupport::pth_writer::*;
    use std::path::Path;

    fn open_bytes(bytes: &[u8]) -> Result<MappedTensors, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pth");
        std::fs::write(&path, bytes).unwrap();
        pth::open(Path::new(&path)).map_err(|e| e.to_string())
    }

    fn refused(bytes: &[u8]) -> String {
        open_bytes(bytes).err().expect("hostile file was accepted")
    }

    fn assert_refused(bytes: &[u8], needle: &str) {
        let err = refused(bytes);
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }

    /// Two tensors sharing storage "0" (8 bf16 values) plus one in storage "1".
    fn valid_specs() -> Vec<Spec> {
        let mut b = spec("b", "0", &[2, 2]);
        b.numel = 8;
        b.offset = 4;
        vec![spec("a", "0", &[2, 4]), b, spec("c", "1", &[3])]
    }

    fn valid_storages() -> Vec<(&'static str, Vec<u8>)> {
        vec![("0", (0u8..16).collect()), ("1", vec![7; 6])]
    }

    #[test]
    fn crafted_checkpoint_opens_with_and_without_zip64() {
        for zip64 in [false, true] {
            let m = open_bytes(&checkpoint(
                &state_dict(&valid_specs()),
                &valid_storages(),
                zip64,
            ))
            .unwrap();
            let names: Vec<&str> = m.tensors.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["a", "b", "c"]);
            assert_eq!(m.data(&m.tensors[0]), (0u8..16).collect::<Vec<_>>());
            assert_eq!(m.data(&m.tensors[1]), (8u8..16).collect::<Vec<_>>());
            assert_eq!(m.tensors[1].shape, [2, 2]);
            assert_eq!(m.data(&m.tensors[2]), [7; 6]);
        }
    }

    #[test]
    fn nested_model_dict_is_unwrapped() {
        let mut p = vec![0x80, 2, b'}', b'('];
        text(&mut p, "epoch");
        int(&mut p, 3);
        text(&mut p, "model");
        p.extend(b"}(");
        text(&mut p, "w");
        tensor_expr(&mut p, &spec("w", "0", &[2]));
        p.extend(b"uu.");
        let m = open_bytes(&checkpoint(&p, &[("0", vec![1, 2, 3, 4])], false)).unwrap();
        assert_eq!(m.tensors.len(), 1);
        assert_eq!(
            (m.tensors[0].name.as_str(), m.data(&m.tensors[0])),
            ("w", &[1u8, 2, 3, 4][..])
        );
    }

    /// A protocol 2 pickle calling `module.name("id")` with GLOBAL + REDUCE.
    fn global_call(module: &str, name: &str) -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(format!("c{module}\n{name}\n").as_bytes());
        p.push(b'(');
        text(&mut p, "id");
        p.extend(b"tR.");
        p
    }

    #[test]
    fn code_execution_globals_are_refused() {
        for (module, name) in [
            ("posix", "system"),
            ("os", "system"),
            ("nt", "system"),
            ("builtins", "eval"),
            ("builtins", "exec"),
            ("builtins", "getattr"),
            ("__builtin__", "eval"),
            ("subprocess", "Popen"),
            ("torch", "load"),
            ("torch._utils", "_rebuild_tensor_v3"),
        ] {
            let bytes = checkpoint(&global_call(module, name), &[], false);
            assert_refused(
                &bytes,
                &format!("refusing pickle global {module}.{name} (not in the allow-list)"),
            );
        }
    }

    #[test]
    fn stack_global_eval_is_refused() {
        let mut p = vec![0x80, 4, 0x8c, 8];
        p.extend(b"builtins");
        p.extend([0x94, 0x8c, 4]);
        p.extend(b"eval");
        p.extend([0x94, 0x93, 0x94, 0x8c, 2]);
        p.extend(b"id");
        p.extend([0x85, b'R', b'.']);
        assert_refused(
            &checkpoint(&p, &[], false),
            "refusing pickle global builtins.eval (not in the allow-list)",
        );
    }

    #[test]
    fn hostile_global_inside_a_state_dict_is_refused() {
        // The attack hidden as a tensor's backward hooks: refused at GLOBAL, before its REDUCE.
        let mut p = state_dict(&valid_specs());
        let hooks = b"ccollections\nOrderedDict\n)R";
        let at = p.windows(hooks.len()).position(|w| w == hooks).unwrap();
        p.splice(
            at..at + hooks.len(),
            b"cposix\nsystem\n(X\x02\x00\x00\x00idtR".iter().copied(),
        );
        assert_refused(
            &checkpoint(&p, &valid_storages(), false),
            "refusing pickle global posix.system",
        );
    }

    #[test]
    fn protocol_0_call_opcodes_are_refused() {
        // INST and OBJ call arbitrary classes in protocols 0/1; they are simply not implemented.
        for p in [
            &b"\x80\x02(X\x02\x00\x00\x00idios\nsystem\n."[..],
            b"\x80\x02(cos\nsystem\nX\x02\x00\x00\x00ido.",
        ] {
            let err = refused(&checkpoint(p, &[], false));
            assert!(
                err.contains("unsupported pickle opcode") || err.contains("refusing pickle global"),
                "{err}"
            );
        }
    }

    #[test]
    fn memo_doubling_bomb_is_refused() {
        // L = []; repeat: memo L, fetch it, append it to itself: each round doubles the copy size.
        let mut p = vec![0x80, 2, b']'];
        for _ in 0..64 {
            p.extend([b'q', 0, b'h', 0, b'a']);
        }
        p.push(b'.');
        assert_refused(&checkpoint(&p, &[], false), "pickle too large");
    }

    #[test]
    fn nesting_bombs_are_refused() {
        let lists = [
            vec![0x80, 2],
            vec![b']'; 10_000],
            vec![b'a'; 9_999],
            vec![b'.'],
        ]
        .concat();
        let tuples = [vec![0x80, 2, b'N'], vec![0x85; 10_000], vec![b'.']].concat();
        let marks = [vec![0x80, 2], vec![b'('; 100_000], vec![b'.']].concat();
        for p in [lists, tuples, marks] {
            assert_refused(&checkpoint(&p, &[], false), "pickle too deeply nested");
        }
    }

    #[test]
    fn object_count_bomb_is_refused() {
        let p = [vec![0x80, 2], vec![b'N'; 2_000_000], vec![b'.']].concat();
        assert_refused(&checkpoint(&p, &[], false), "pickle too large");
    }

    #[test]
    fn truncated_pickle_is_refused() {
        let p = state_dict(&valid_specs());
        for cut in 0..p.len() {
            let err = refused(&checkpoint(&p[..cut], &valid_storages(), false));
            assert!(err.contains("pickle"), "cut {cut}: {err}");
        }
    }

    #[test]
    fn compressed_and_encrypted_entries_are_refused() {
        let pickle = state_dict(&valid_specs());
        for (method, flags, needle) in [(8, 0, "is compressed (method 8)"), (0, 1, "is encrypted")]
        {
            let mut members = vec![member("archive/data.pkl", &pickle)];
            members.push(Member {
                method,
                flags,
                ..member("archive/data/0", &[0; 16])
            });
            assert_refused(
                &write_zip(&members, false),
                &format!("\"archive/data/0\" {needle}"),
            );
        }
    }

    #[test]
    fn zip_slip_names_are_refused() {
        let pickle = state_dict(&[]);
        for name in ["../evil", "/etc/passwd", "archive/../../x", "..\\x", "C:/x"] {
            let zip = write_zip(
                &[member("archive/data.pkl", &pickle), member(name, b"x")],
                false,
            );
            assert_refused(&zip, "escapes the archive");
        }
    }

    #[test]
    fn duplicate_entries_and_names_are_refused() {
        let pickle = state_dict(&[spec("a", "0", &[1]), spec("a", "0", &[1])]);
        assert_refused(
            &checkpoint(&pickle, &[("0", vec![0; 2])], false),
            "tensor \"a\" appears twice",
        );
        let zip = write_zip(
            &[
                member("archive/data.pkl", &pickle),
                member("archive/data/0", &[0; 2]),
                member("archive/data/0", &[0; 2]),
            ],
            false,
        );
        assert_refused(&zip, "appears twice");
    }

    #[test]
    fn storage_too_small_is_refused() {
        // The pickle declares 4 elements and the entry holds them, but the tensor wants 8.
        let mut s = spec("w", "0", &[8]);
        s.numel = 4;
        assert_refused(
            &checkpoint(&state_dict(&[s]), &[("0", vec![0; 8])], false),
            "outside its storage",
        );
        // An offset pushing a fitting size past the end.
        let mut s = spec("w", "0", &[4]);
        s.offset = 1;
        assert_refused(
            &checkpoint(&state_dict(&[s]), &[("0", vec![0; 8])], false),
            "outside its storage",
        );
        // The entry holds fewer bytes than the pickle's storage size.
        let s = spec("w", "0", &[4]);
        assert_refused(
            &checkpoint(&state_dict(&[s]), &[("0", vec![0; 6])], false),
            "holds 6 bytes",
        );
    }

    #[test]
    fn missing_storage_is_refused() {
        let s = spec("w", "9", &[4]);
        assert_refused(
            &checkpoint(&state_dict(&[s]), &[], false),
            "\"archive/data/9\" is missing",
        );
    }

    #[test]
    fn non_contiguous_stride_is_refused() {
        let mut s = spec("w", "0", &[2, 3]);
        s.stride = vec![1, 2];
        assert_refused(
            &checkpoint(&state_dict(&[s]), &[("0", vec![0; 12])], false),
            "\"w\" is not contiguous",
        );
    }

    #[test]
    fn big_endian_byteorder_is_refused() {
        let pickle = state_dict(&[]);
        let zip = write_zip(
            &[
                member("archive/data.pkl", &pickle),
                member("archive/byteorder", b"big"),
            ],
            false,
        );
        assert_refused(&zip, "big-endian");
    }

    #[test]
    fn non_tensor_values_and_roots_are_refused() {
        let mut p = vec![0x80, 2, b'}', b'('];
        text(&mut p, "epoch");
        int(&mut p, 3);
        p.extend(b"u.");
        assert_refused(
            &checkpoint(&p, &[], false),
            "entry \"epoch\" is an int, not a tensor",
        );
        assert_refused(
            &checkpoint(b"\x80\x02].", &[], false),
            "checkpoint holds a list",
        );
    }

    #[test]
    fn not_a_zip_is_refused() {
        assert_refused(b"", "unsupported legacy (non-zip) torch format");
        assert_refused(
            b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.",
            "bare pickle stream",
        );
        assert_refused(
            &[&b"PK\x03\x04"[..], &[0; 40]].concat(),
            "no zip end of central directory",
        );
        assert_refused(
            &write_zip(&[member("weights.bin", b"x")], false),
            "no data.pkl",
        );
    }

    #[test]
    fn lying_zip_counts_and_offsets_are_refused() {
        let good = checkpoint(&state_dict(&valid_specs()), &valid_storages(), false);
        let eocd = good.len() - 22;
        // Entry count far beyond what the directory can hold.
        let mut b = good.clone();
        b[eocd + 10..eocd + 12].copy_from_slice(&0xfff0u16.to_le_bytes());
        assert!(refused(&b).contains("claims"));
        // Central directory offset past the end of the file.
        let mut b = good.clone();
        b[eocd + 16..eocd + 20].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        assert!(refused(&b).contains("past the end"));
        // A local header offset pointing nowhere useful.
        let cd = u32::from_le_bytes(good[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
        let mut b = good.clone();
        b[cd + 42..cd + 46].copy_from_slice(&5u32.to_le_bytes());
        assert!(refused(&b).contains("no local header"));
    }
}
