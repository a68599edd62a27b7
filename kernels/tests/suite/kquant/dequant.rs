//! llq's K-quant decoders against gguf-py's `gguf.quants.dequantize`, bit for bit, on random
//! blocks: random bytes everywhere except the fp16 super-block factors, which get finite values.
//! Needs LLQ_PYTHON (with gguf and numpy). gguf-py has no Q8_K; `oracle` checks that one
//! against ggml.

use super::weight_types;
use crate::common::Scratch;
use llq_kernels::{dequantize_row, factor_offsets};
use llq_testsupport::{run_py, Rng};
use llq_types::GgmlType;

fn random_blocks(ty: GgmlType, blocks: usize, rng: &mut Rng) -> Vec<u8> {
    let size = ty.type_size();
    let mut bytes: Vec<u8> = (0..blocks * size).map(|_| rng.next_u64() as u8).collect();
    for block in bytes.chunks_exact_mut(size) {
        for &at in factor_offsets(ty) {
            // Magnitudes from 1e-6 to 1e2, either sign (negative mins do occur in the wild).
            let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
            let v = (rng.normal() * 4.0).exp2() * 0.01 * sign;
            block[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
    }
    bytes
}

#[test]
fn dequantize_matches_gguf_py() {
    let Some(python) = llq_testsupport::python() else {
        return;
    };
    let mut rng = Rng::new(2024);
    for ty in weight_types() {
        let blocks = 64;
        let bytes = random_blocks(ty, blocks, &mut rng);
        let scratch = Scratch::new("kquant-gguf-py");
        scratch.write("blocks.bin", &bytes);
        let (input, output) = (scratch.arg("blocks.bin"), scratch.arg("values.f32"));
        run_py(
            &python,
            "kquant_oracle.py",
            &["dequantize", ty.name(), &input, &output],
        );
        let want = scratch.read_f32("values.f32");
        assert_eq!(want.len(), blocks * ty.block_size(), "{ty}");
        let mut got = vec![0f32; want.len()];
        dequantize_row(ty, &bytes, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{ty} element {i} (block {}): llq {g} gguf-py {w}",
                i / ty.block_size()
            );
        }
    }
}
