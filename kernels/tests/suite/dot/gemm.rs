//! The register-tiled many-token kernels (`Kernel::gemm`: AVX2, AVX-VNNI and AVX-512 VNNI)
//! against the scalar reference. The quantized ones must equal its dot products bit for bit:
//! the same exact block integer sums and the same f32 operations per row in the same order. The
//! float ones fuse their products into f32 where the reference adds them in f64: they must agree
//! with the f64 dot product to 1e-6·Σ|w·a| (rows up to 1024) or 1e-5·Σ|w·a| (longer), the
//! tolerance of the SIMD float kernels (see `kernels`). Checked on the kernel directly (every
//! token count of one call, tiles with missing rows) and through `matmul` (row and token tails),
//! in every table that has tiles, for every type it tiles. The AVX2 tiles' i16 sums are the ones
//! that could saturate: the extreme-level test puts every weight and activation level at its
//! extremes. The float tiles must also give the same bits at both vector widths.

use super::{activations, encode, random_f16, raw_activations, raw_weights, reference};
use crate::common::{same_f32, weight_types};
use crate::isa::run_tables;
use llq_kernels::dot::{self, DotTable, TILE_ROWS, TILE_TOKENS};
use llq_kernels::matmul::{matmul_quantized_with, Activations, Weights};
use llq_testsupport::Rng;
use llq_types::GgmlType::{self, BF16, F16, F32, IQ4_NL, Q4_0, Q4_K, Q5_K, Q6_K, Q8_0};

/// The ISAs whose tables have tiles (none on aarch64 yet).
#[cfg(not(target_arch = "aarch64"))]
const TILED_ISAS: &[&str] = &["avx2", "avxvnni", "avx512vnni"];
#[cfg(target_arch = "aarch64")]
const TILED_ISAS: &[&str] = &[];

/// The types every table with tiles tiles.
const TILED: [GgmlType; 9] = [Q4_0, Q8_0, IQ4_NL, Q4_K, Q5_K, Q6_K, F16, BF16, F32];

/// The weight types `t` has a tile for.
fn tiled_types(t: &DotTable) -> impl Iterator<Item = GgmlType> + '_ {
    weight_types().filter(|&ty| t.kernel(ty).unwrap().gemm().is_some())
}

/// The tables with tiles (none on a CPU without AVX2).
fn tiled_tables() -> impl Iterator<Item = &'static DotTable> {
    dot::tables()
        .into_iter()
        .filter(|t| tiled_types(t).next().is_some())
}

/// `got` against the scalar kernel's `want` for weight row `w` and activation row `a`: the
/// same bits for quantized types, the f64 dot product within tolerance for float types.
fn agrees(ty: GgmlType, n: usize, got: f32, want: f32, w: &[u8], a: &[u8]) -> bool {
    if ty.is_quantized() {
        return same_f32(got, want);
    }
    let (s, mag) = reference(ty, w, a, n);
    let tol = if n <= 1024 { 1e-6 } else { 1e-5 };
    (f64::from(got) - s).abs() <= tol * mag
}

/// `rows` (≤ TILE_ROWS weight rows) against `acts` (activation rows) through `t`'s tile for
/// `ty`, every prefix of up to TILE_TOKENS tokens per call, against the scalar reference.
fn assert_tile_exact(
    t: &DotTable,
    ty: GgmlType,
    n: usize,
    rows: &[Vec<u8>],
    acts: &[Vec<u8>],
    what: &str,
) {
    let scalar = dot::scalar_table().kernel(ty).unwrap();
    let g = t.kernel(ty).unwrap().gemm().unwrap();
    let refs: Vec<&[u8]> = rows.iter().map(|r| &r[..]).collect();
    let mut tile = vec![0xa5u8; (g.tile_bytes)(n)];
    (g.repack)(n, &refs, &mut tile);
    let p = g.act;
    let packed: Vec<u8> = acts
        .iter()
        .flat_map(|a| {
            let mut o = vec![0u8; (p.row_bytes)(n)];
            (p.pack)(n, a, &mut o);
            o
        })
        .collect();
    for nt in 1..=TILE_TOKENS.min(acts.len()) {
        let mut out = vec![[f32::NAN; TILE_ROWS]; nt];
        (g.run)(n, &tile, &packed[..nt * (p.row_bytes)(n)], &mut out);
        for (tok, (o, a)) in out.iter().zip(acts).enumerate() {
            for (r, &got) in o.iter().enumerate() {
                let want = rows.get(r).map_or(0.0, |w| (scalar.dot)(n, w, a));
                let ok = match rows.get(r) {
                    Some(w) => agrees(ty, n, got, want, w, a),
                    None => got == 0.0,
                };
                assert!(
                    ok,
                    "{} {ty} n={n} {what}: {nt} tokens, token {tok} row {r}: {got} vs scalar {want}",
                    t.isa
                );
            }
        }
    }
}

/// Rows of one, a few and many blocks.
fn tile_lengths(ty: GgmlType) -> [usize; 3] {
    match ty.block_size() {
        256 => [256, 768, 4096 + 256],
        32 => [32, 96, 4096 + 96],
        _ => [1, 33, 4096 + 7],
    }
}

#[test]
fn tiles_equal_scalar_on_random_rows() {
    let mut rng = Rng::new(11);
    run_tables(tiled_tables(), TILED_ISAS, |t| {
        for ty in tiled_types(t) {
            for n in tile_lengths(ty) {
                for (nrows, scale) in [(TILE_ROWS, 1e-3f32), (TILE_ROWS, 40.0), (5, 1.0)] {
                    let rows: Vec<Vec<u8>> = (0..nrows)
                        .map(|_| encode(ty, &rng.normals(n, scale)))
                        .collect();
                    let acts: Vec<Vec<u8>> = (0..TILE_TOKENS)
                        .map(|_| activations(ty, &rng.normals(n, 1.0 / scale)))
                        .collect();
                    assert_tile_exact(t, ty, n, &rows, &acts, &format!("scale {scale}"));
                }
                // Raw fp16 scales of either sign, normal or subnormal, different in every row.
                let rows: Vec<Vec<u8>> = (0..TILE_ROWS)
                    .map(|_| {
                        let d = random_f16(&mut rng);
                        let mut r2 = Rng::new(rng.next_u64());
                        raw_weights(ty, n, d, &mut || r2.next_u64() as u8)
                    })
                    .collect();
                let acts: Vec<Vec<u8>> = (0..TILE_TOKENS)
                    .map(|_| activations(ty, &rng.normals(n, 1.0)))
                    .collect();
                assert_tile_exact(t, ty, n, &rows, &acts, "raw scales");
            }
        }
    });
}

#[test]
fn tiles_equal_scalar_on_extreme_levels() {
    let mut rng = Rng::new(12);
    // Weight bytes at the extremes of every encoding (nibbles 0 and 15, Q8_0 levels −128 and
    // 127, Q5_K's fifth bits all set or clear, Q4_K's and Q5_K's 6-bit scales and mins 0 and 63,
    // Q6_K's levels 0 and 63 and scales −128 and 127) and activation levels ±127 and −128.
    let fills: [u8; 4] = [0x00, 0xff, 0x80, 0x7f];
    let act_levels: [i8; 4] = [127, -127, -128, 1];
    run_tables(tiled_tables(), TILED_ISAS, |t| {
        for ty in tiled_types(t) {
            for n in [256, 4096] {
                let rows: Vec<Vec<u8>> = fills
                    .iter()
                    .map(|&f| raw_weights(ty, n, 0x3C00, &mut || f))
                    .chain((0..4).map(|_| {
                        let mut r2 = Rng::new(rng.next_u64());
                        raw_weights(ty, n, 0x3C00, &mut || r2.next_u64() as u8)
                    }))
                    .collect();
                let acts: Vec<Vec<u8>> = act_levels
                    .iter()
                    .map(|&l| raw_activations(ty, n, &mut || l))
                    .chain((0..4).map(|_| {
                        let mut r2 = Rng::new(rng.next_u64());
                        raw_activations(ty, n, &mut || r2.next_u64() as i8)
                    }))
                    .collect();
                assert_tile_exact(t, ty, n, &rows, &acts, "extreme levels");
            }
        }
    });
}

#[test]
fn matmul_through_tiles_equals_scalar_matmul() {
    let mut rng = Rng::new(13);
    run_tables(tiled_tables(), TILED_ISAS, |t| {
        for ty in tiled_types(t) {
            // 37 rows: two full tiles and a partial one; token counts with and without a tail.
            let (rows, cols) = (37, 512);
            let data: Vec<u8> = (0..rows)
                .flat_map(|_| encode(ty, &rng.normals(cols, 0.5)))
                .collect();
            let w = Weights::new(ty, &data, rows, cols).unwrap();
            for n_tok in [2, 9, 70] {
                let act = Activations::quantize(ty, &rng.normals(n_tok * cols, 2.0), cols);
                let mut want = vec![f32::NAN; n_tok * rows];
                matmul_quantized_with(dot::scalar_table(), &w, &act, &mut want);
                let mut got = vec![f32::NAN; n_tok * rows];
                matmul_quantized_with(t, &w, &act, &mut got);
                for (i, (g, want)) in got.iter().zip(&want).enumerate() {
                    let a = &act.data[i / rows * act.row_bytes..][..act.row_bytes];
                    assert!(
                        agrees(ty, cols, *g, *want, w.row_data(i % rows), a),
                        "{} {ty} {n_tok} tokens: out[{i}] {g} vs scalar {want}",
                        t.isa
                    );
                }
            }
        }
    });
}

/// Where the tiles are: every table with tiles tiles these types, the others none.
#[test]
fn the_simd_tables_have_tiles() {
    for t in dot::tables() {
        for ty in weight_types() {
            let want = TILED_ISAS.contains(&t.isa) && TILED.contains(&ty);
            let has = t.kernel(ty).unwrap().gemm().is_some();
            assert_eq!(has, want, "{} {ty}", t.isa);
        }
    }
}

/// The float tiles do the same operations per row at every vector width: the AVX2 tile (also
/// the AVX-VNNI table's) and the AVX-512 one give the same bits.
#[test]
fn float_tiles_agree_across_widths() {
    let mut rng = Rng::new(14);
    let tables: Vec<&DotTable> = tiled_tables().collect();
    run_tables(tables.iter().copied(), TILED_ISAS, |t| {
        for ty in [F16, BF16, F32] {
            let (rows, cols) = (21, 4096 + 7 * ty.block_size());
            let data: Vec<u8> = (0..rows)
                .flat_map(|_| encode(ty, &rng.normals(cols, 0.5)))
                .collect();
            let w = Weights::new(ty, &data, rows, cols).unwrap();
            let act = Activations::quantize(ty, &rng.normals(11 * cols, 2.0), cols);
            let mut want = vec![f32::NAN; 11 * rows];
            matmul_quantized_with(tables[0], &w, &act, &mut want);
            let mut got = vec![f32::NAN; 11 * rows];
            matmul_quantized_with(t, &w, &act, &mut got);
            for (i, (g, want)) in got.iter().zip(&want).enumerate() {
                assert!(
                    same_f32(*g, *want),
                    "{ty}: {} out[{i}] {g} vs {} {want}",
                    t.isa,
                    tables[0].isa
                );
            }
        }
    });
}
