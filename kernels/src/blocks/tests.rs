//! The registry against the types table: every [`GgmlType`] has an entry, and what the entry
//! says (encoder, decoder, factors, importance, dot product) agrees with the type's row.

use super::*;
use crate::dot;
use llq_testsupport::Rng;

fn encode(ty: GgmlType, x: &[f32], importance: Option<&[f32]>, fill: u8) -> Vec<u8> {
    let mut q = vec![fill; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut q, importance);
    q
}

fn decode(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n];
    dequantize_row(ty, q, &mut y);
    y
}

#[test]
fn every_type_has_a_consistent_entry() {
    let mut rng = Rng::new(12);
    for ty in GgmlType::all() {
        let t = traits(ty);
        let n = 4 * ty.block_size();
        let x = rng.normals(n, 0.3);
        let importance: Vec<f32> = rng.normals(n, 1.0).iter().map(|v| v * v).collect();

        // The encoder fills exactly the table's bytes per block: every byte is written
        // (whatever the buffer held) and blocks are encoded independently.
        let q = encode(ty, &x, None, 0);
        assert_eq!(q, encode(ty, &x, None, 0xff), "{ty}: bytes left unwritten");
        let per_block: Vec<u8> = x
            .chunks(ty.block_size())
            .flat_map(|b| encode(ty, b, None, 0))
            .collect();
        assert_eq!(
            q,
            per_block,
            "{ty}: blocks are not {} bytes",
            ty.type_size()
        );

        // The decoder reads the same layout back.
        let y = decode(ty, &q, n);
        let rms = |v: &mut dyn Iterator<Item = f32>| {
            (v.map(|a| f64::from(a) * f64::from(a)).sum::<f64>() / n as f64).sqrt()
        };
        let err = rms(&mut x.iter().zip(&y).map(|(a, b)| a - b));
        assert!(
            err < 0.5 * rms(&mut x.iter().copied()),
            "{ty}: rms error {err}"
        );

        // Doubling the linear factors doubles every decoded value, exactly.
        let mut doubled = q.clone();
        for block in doubled.chunks_exact_mut(ty.type_size()) {
            for &at in t.factors {
                let d = f16_at(block, at);
                write_f16(block, at, 2.0 * d);
            }
        }
        let want: Vec<f32> = y.iter().map(|v| 2.0 * v).collect();
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
        if !t.factors.is_empty() {
            assert!(same(&decode(ty, &doubled, n), &want), "{ty}: factors");
        }
        let mut sorted = t.factors.to_vec();
        sorted.dedup();
        assert_eq!(sorted, t.factors, "{ty}: factors in order, once each");
        assert!(t.factors.iter().all(|&at| at + 2 <= ty.type_size()));

        // Importance steers exactly the types that say so.
        let weighted = encode(ty, &x, Some(&importance), 0);
        assert_eq!(weighted != q, t.uses_importance, "{ty}: importance");

        // A weight type has a scalar dot product (in the scalar table, with its activation
        // type); an activation-only type has none.
        assert_eq!(
            t.dot.is_some(),
            ty.activation().is_some(),
            "{ty}: dot product"
        );
        let kernel = dot::scalar_table().kernel(ty);
        assert_eq!(kernel.map(|k| k.act), ty.activation(), "{ty}: scalar table");
        if let Some(act) = ty.activation() {
            assert_eq!(act.block_size(), ty.block_size(), "{ty}: activation {act}");
        }
    }
}
