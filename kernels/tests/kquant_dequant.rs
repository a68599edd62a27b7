//! llq's K-quant decoders against gguf-py's `gguf.quants.dequantize`, bit for bit, on random
//! blocks: random bytes everywhere except the fp16 super-block scales, which get finite values.
//! Needs LLQ_PYTHON pointing at an interpreter with gguf and numpy; skips otherwise. (gguf-py has
//! no Q8_K; kquant_oracle.rs checks that one against ggml.)

mod kquant_common;

use kquant_common::*;
use llq_kernels::dequantize_row;
use llq_types::GgmlType;
/// Byte offsets of each type's fp16 super-block scales within a block.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        _ => unreachable!("{ty}"),
    }
}

fn random_blocks(ty: GgmlType, blocks: usize, rng: &mut Rng) -> Vec<u8> {
    let size = ty.type_size();
    let mut bytes: Vec<u8> = (0..blocks * size).map(|_| rng.next_u64() as u8).collect();
    for block in bytes.chunks_exact_mut(size) {
        for &at in f16_fields(ty) {
            // Magnitudes from 1e-6 to 1e2, either sign (negative mins do occur in the wild).
            let v = (rng.normal() * 4.0).exp2()
                * 0.01
                * if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
            block[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
    }
    bytes
}

#[test]
fn dequantize_matches_gguf_py() {
    let Some(python) = python() else { return };
    let mut rng = Rng::new(2024);
    for &ty in &K_TYPES[..5] {
        let blocks = 64;
        let bytes = random_blocks(ty, blocks, &mut rng);
        let input = temp_path("blocks.bin");
        let output = temp_path("values.f32");
        std::fs::write(&input, &bytes).unwrap();
        let args = [
            "dequantize",
            ty.name(),
            input.to_str().unwrap(),
            output.to_str().unwrap(),
        ];
        let result = run_oracle(&python, &args);
        let want = std::fs::read(&output).map(|b| f32_from_bytes(&b));
        let _ = std::fs::remove_file(&input);
        let _ = std::fs::remove_file(&output);
        result.unwrap_or_else(|(code, why)| {
            panic!("gguf-py dequantize {ty} failed ({code:?}): {why}")
        });
        let want = want.unwrap();
        assert_eq!(want.len(), blocks * 256, "{ty}");
        let mut got = vec![0f32; want.len()];
        dequantize_row(ty, &bytes, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{ty} element {i} (block {}): llq {g} gguf-py {w}",
                i / 256
            );
        }
    }
}
