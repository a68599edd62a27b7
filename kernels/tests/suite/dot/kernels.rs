//! Every SIMD dot kernel against the scalar reference, and the scalar reference against an f64
//! dot product of the decoded rows.
//!
//! Tolerances. Integer parts must agree exactly: with every scale 1.0 all block values are small
//! integers, so any integer slip shows as an inexact result (checked exactly whenever the sums stay
//! below 2^24, where f32 holds every integer). With real scales the kernels differ only in float
//! accumulation order: the scalar code adds one f32 term per block in order, the SIMD code keeps
//! eight FMA lanes. Each rounding is ≤ 2^-24 relative to a partial sum bounded by Σ|w·a|, and
//! there are at most ~(blocks + 8) of them, so |simd − scalar| ≤ tol·Σ|w·a| with tol = 1e-6 for
//! rows up to 1024 elements and 1e-5 beyond (4096-element rows: 128 blocks, ≤ 8e-6 worst case;
//! observed errors are far smaller). Against the f64 reference the scalar kernel additionally sees
//! the f32 rounding of each decoded value (≤ 2^-24 each), except for Q4_1/Q5_1 whose activation
//! block sum `s` is stored as fp16 (≤ 2^-11 of the `m·s` term): 1e-3 there.

use super::{activations, encode, lengths, random_f16, raw_activations, raw_weights, reference};
use crate::common::weight_types;
use crate::isa::{cpu_isas, run_tables};
use llq_kernels::dot::{self, DotTable};
use llq_testsupport::Rng;
use llq_types::{Family, GgmlType};

/// The ISAs of this architecture whose tables have their own kernel for every weight type.
#[cfg(not(target_arch = "aarch64"))]
const SIMD: &[&str] = &["avx2", "avxvnni", "avx512vnni"];
#[cfg(target_arch = "aarch64")]
const SIMD: &[&str] = &["neon", "neondot"];

/// The ISAs whose quantized kernels equal the scalar reference bit for bit (dot, matvec and
/// four-token kernels alike), not only to rounding.
#[cfg(target_arch = "aarch64")]
const BIT_EXACT: &[&str] = &["neon", "neondot"];

/// The SIMD tables of this architecture below the best that `LLQ_KERNELS` can cap the choice at.
#[cfg(not(target_arch = "aarch64"))]
const CAPS: &[&str] = &["avx2", "avxvnni"];
#[cfg(target_arch = "aarch64")]
const CAPS: &[&str] = &["neon"];

/// The SIMD tables this CPU supports, each compared with the scalar reference.
fn simd_tables() -> impl Iterator<Item = &'static DotTable> {
    dot::tables().into_iter().skip(1)
}

fn tol(n: usize) -> f64 {
    if n <= 1024 {
        1e-6
    } else {
        1e-5
    }
}

fn dot_with(t: &DotTable, ty: GgmlType, n: usize, w: &[u8], a: &[u8]) -> f32 {
    (t.kernel(ty).unwrap().dot)(n, w, a)
}

fn is_affine(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1)
}

#[test]
fn the_tables_are_those_the_cpu_has() {
    let names: Vec<&str> = dot::tables().iter().map(|t| t.isa).collect();
    assert_eq!(names, cpu_isas());
    assert_eq!(dot::best_table().isa, *names.last().unwrap());
    for name in names {
        assert_eq!(dot::table_named(name).map(|t| t.isa), Some(name));
    }
    assert_eq!(dot::scalar_table().isa, "scalar");
}

#[test]
fn every_weight_type_has_a_kernel_in_every_table() {
    let mut all = dot::tables();
    all.extend([dot::best_table(), dot::table()]);
    for t in all {
        for ty in GgmlType::all() {
            let act = t.kernel(ty).map(|k| k.act);
            assert_eq!(act, ty.activation(), "{ty} in {}", t.isa);
        }
    }
}

#[test]
fn simd_equals_scalar_on_encoded_rows() {
    run_tables(simd_tables(), SIMD, encoded_rows);
}

fn encoded_rows(simd: &DotTable) {
    let (isa, scal) = (simd.isa, dot::scalar_table());
    let mut rng = Rng::new(1);
    for ty in weight_types() {
        for &n in lengths(ty) {
            for scale in [1e-3f32, 1.0, 40.0] {
                let w = encode(ty, &rng.normals(n, scale));
                let a = activations(ty, &rng.normals(n, 1.0 / scale));
                let (r, mag) = reference(ty, &w, &a, n);
                let s = f64::from(dot_with(scal, ty, n, &w, &a));
                let v = f64::from(dot_with(simd, ty, n, &w, &a));
                assert!(
                    (v - s).abs() <= tol(n) * mag,
                    "{isa} {ty} n={n} scale={scale}: simd {v} scalar {s} (mag {mag})"
                );
                let rt = if is_affine(ty) { 1e-3 } else { tol(n) };
                assert!(
                    (s - r).abs() <= rt * mag,
                    "{ty} n={n} scale={scale}: scalar {s} reference {r} (mag {mag})"
                );
            }
        }
    }
}

/// Byte patterns that hit the extremes of every level encoding: all-zero and all-one bits,
/// alternating nibbles, 0x80 (−128 as a Q8_0 weight), and random bytes.
type Named<T> = (&'static str, Box<dyn FnMut() -> T>);

fn patterns(rng: &mut Rng) -> Vec<Named<u8>> {
    let mut r2 = Rng::new(rng.next_u64());
    let mut k = 0u32;
    vec![
        ("zeros", Box::new(|| 0u8)),
        ("ones", Box::new(|| 0xffu8)),
        (
            "alternating",
            Box::new(move || {
                k += 1;
                if k.is_multiple_of(2) {
                    0x0f
                } else {
                    0xf0
                }
            }),
        ),
        ("0x80", Box::new(|| 0x80u8)),
        ("0x7f", Box::new(|| 0x7fu8)),
        ("random", Box::new(move || r2.next_u64() as u8)),
    ]
}

fn levels(rng: &mut Rng) -> Vec<Named<i8>> {
    let mut r2 = Rng::new(rng.next_u64());
    let mut k = 0u32;
    vec![
        ("+127", Box::new(|| 127i8)),
        ("-127", Box::new(|| -127i8)),
        (
            "±127",
            Box::new(move || {
                k += 1;
                if k.is_multiple_of(3) {
                    -127
                } else {
                    127
                }
            }),
        ),
        ("random", Box::new(move || (r2.next_u64() % 255) as i8)),
    ]
}

#[test]
fn integer_parts_are_exact_on_adversarial_blocks() {
    run_tables(simd_tables(), SIMD, adversarial_blocks);
}

fn adversarial_blocks(simd: &DotTable) {
    let (isa, scal) = (simd.isa, dot::scalar_table());
    let mut rng = Rng::new(2);
    let limit = f64::from(1u32 << 24);
    let mut exact_checks = 0;
    for ty in weight_types() {
        for &n in lengths(ty).iter().filter(|&&n| n <= 1024) {
            for (wname, mut fill) in patterns(&mut rng) {
                let w = raw_weights(ty, n, 0x3C00, &mut *fill);
                for (aname, mut level) in levels(&mut rng) {
                    let mut level = move || {
                        let v = level();
                        if v == -128 {
                            -127
                        } else {
                            v
                        }
                    };
                    let a = raw_activations(ty, n, &mut level);
                    let (r, mag) = reference(ty, &w, &a, n);
                    let s = f64::from(dot_with(scal, ty, n, &w, &a));
                    let v = f64::from(dot_with(simd, ty, n, &w, &a));
                    let what = format!("{isa} {ty} n={n} weights {wname} activations {aname}");
                    if mag < limit {
                        // Every value is an integer below 2^24: no rounding anywhere.
                        assert_eq!(v, s, "{what}: simd vs scalar");
                        if !is_affine(ty) {
                            assert_eq!(s, r, "{what}: scalar vs reference");
                        }
                        exact_checks += 1;
                    } else {
                        assert!((v - s).abs() <= 1e-6 * mag, "{what}: {v} vs {s}");
                    }
                }
            }
        }
    }
    assert!(exact_checks > 500, "only {exact_checks} exact cases");
}

#[test]
fn simd_equals_scalar_with_random_scales() {
    run_tables(simd_tables(), SIMD, random_scales);
}

fn random_scales(simd: &DotTable) {
    let (isa, scal) = (simd.isa, dot::scalar_table());
    let mut rng = Rng::new(3);
    for ty in weight_types() {
        for &n in lengths(ty) {
            for _ in 0..4 {
                let d = random_f16(&mut rng);
                let mut r2 = Rng::new(rng.next_u64());
                let w = raw_weights(ty, n, d, &mut || r2.next_u64() as u8);
                let a = activations(ty, &rng.normals(n, 1.0));
                let (_, mag) = reference(ty, &w, &a, n);
                let s = f64::from(dot_with(scal, ty, n, &w, &a));
                let v = f64::from(dot_with(simd, ty, n, &w, &a));
                assert!(
                    (v - s).abs() <= tol(n) * mag,
                    "{isa} {ty} n={n} d={d:#06x}: simd {v} scalar {s} (mag {mag})"
                );
            }
        }
    }
}

#[test]
fn lengths_are_checked() {
    let w = vec![0u8; GgmlType::Q4_0.row_bytes(64).unwrap()];
    let a = vec![0u8; GgmlType::Q8_0.row_bytes(64).unwrap()];
    let k = dot::kernel(GgmlType::Q4_0).unwrap();
    assert_eq!((k.dot)(64, &w, &a), 0.0);
    let r = std::panic::catch_unwind(|| (k.dot)(64, &w[..w.len() / 2], &a));
    assert!(r.is_err());
    let r = std::panic::catch_unwind(|| (k.dot)(60, &w, &a));
    assert!(r.is_err());
}

/// CI runs the suite again with `LLQ_KERNELS=scalar`. Here: with the variable set the active
/// table must be the one it names (or the best below it the CPU has); without it, run this very
/// test again in child processes with `scalar` and each of [`CAPS`], which then take the first
/// branches.
#[test]
fn llq_kernels_forces_a_table() {
    // This test's name as the harness knows it: its module path without the crate.
    let name = format!(
        "{}::llq_kernels_forces_a_table",
        module_path!().split_once("::").unwrap().1
    );
    match std::env::var("LLQ_KERNELS").as_deref() {
        Ok("scalar") => {
            assert_eq!(dot::active_isa(), "scalar");
            assert!(std::ptr::eq(dot::table(), dot::scalar_table()));
            return;
        }
        Ok(v) if CAPS.contains(&v) => {
            // The named table, else the best of the weaker ones the CPU has.
            let at = CAPS.iter().position(|&c| c == v).unwrap();
            let want = CAPS[..=at]
                .iter()
                .rev()
                .find_map(|&c| dot::table_named(c))
                .unwrap_or(dot::scalar_table());
            assert!(std::ptr::eq(dot::table(), want));
            assert_eq!(dot::active_isa(), want.isa);
            return;
        }
        _ => {}
    }
    assert_eq!(dot::active_isa(), dot::best_table().isa);
    for value in std::iter::once(&"scalar").chain(CAPS) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--nocapture"])
            .env("LLQ_KERNELS", value)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "LLQ_KERNELS={value}: {} {stdout}",
            out.status
        );
        assert!(stdout.contains("1 passed"), "LLQ_KERNELS={value}: {stdout}");
    }
}

/// `Kernel::dot4` and `Kernel::dot1` over rows `[a0, a1, a2, a3]` (packed by
/// `Kernel::pack_rows` where the table has packed kernels) must equal `[dot(n, w, a0), ..]` bit
/// for bit, in every table: the packed kernels (AVX-512 Q4_0/Q8_0) and the generic fallback.
fn assert_dot4_exact(t: &DotTable, ty: GgmlType, n: usize, w: &[u8], a: [&[u8]; 4], what: &str) {
    let k = t.kernel(ty).unwrap();
    let rows = a.concat();
    let rows = k.pack_rows(n, &rows);
    let got = k.dot4(n, w, &rows, 0);
    for (j, (g, a)) in got.iter().zip(a).enumerate() {
        let want = (k.dot)(n, w, a);
        let one = k.dot1(n, w, &rows, j);
        assert_eq!(
            one.to_bits(),
            want.to_bits(),
            "{} {ty} n={n} {what} token {j}: dot1",
            t.isa
        );
        assert_eq!(
            g.to_bits(),
            want.to_bits(),
            "{} {ty} n={n} {what} token {j}: dot4 {g} vs dot {want}",
            t.isa
        );
    }
}

/// Block counts with and without a tail after the four-block steps.
fn dot4_lengths(ty: GgmlType) -> Vec<usize> {
    let mut v = lengths(ty).to_vec();
    if ty.block_size() == 32 {
        v.extend([160, 224, 4096 + 96]);
    }
    v
}

#[test]
fn dot4_equals_four_dots_on_random_rows() {
    let mut rng = Rng::new(4);
    run_tables(dot::tables(), SIMD, |t| {
        for ty in weight_types() {
            for n in dot4_lengths(ty) {
                for scale in [1e-3f32, 1.0, 40.0] {
                    let w = encode(ty, &rng.normals(n, scale));
                    let a: Vec<Vec<u8>> = (0..4)
                        .map(|_| activations(ty, &rng.normals(n, 1.0 / scale)))
                        .collect();
                    let a = [&a[0][..], &a[1][..], &a[2][..], &a[3][..]];
                    assert_dot4_exact(t, ty, n, &w, a, &format!("scale {scale}"));
                }
                // Raw fp16 scales of either sign, normal or subnormal.
                let d = random_f16(&mut rng);
                let mut r2 = Rng::new(rng.next_u64());
                let w = raw_weights(ty, n, d, &mut || r2.next_u64() as u8);
                let a: Vec<Vec<u8>> = (0..4)
                    .map(|_| activations(ty, &rng.normals(n, 1.0)))
                    .collect();
                let a = [&a[0][..], &a[1][..], &a[2][..], &a[3][..]];
                assert_dot4_exact(t, ty, n, &w, a, &format!("raw scale {d:#06x}"));
            }
        }
    });
}

#[test]
fn dot4_equals_four_dots_on_adversarial_rows() {
    let mut rng = Rng::new(5);
    run_tables(dot::tables(), SIMD, |t| {
        for ty in weight_types() {
            for n in dot4_lengths(ty).into_iter().filter(|&n| n <= 1024) {
                for (wname, mut fill) in patterns(&mut rng) {
                    let w = raw_weights(ty, n, 0x3C00, &mut *fill);
                    // Four different extreme activation rows against the same weights.
                    let a: Vec<Vec<u8>> = levels(&mut rng)
                        .into_iter()
                        .map(|(_, mut level)| {
                            raw_activations(ty, n, &mut || match level() {
                                -128 => -127,
                                v => v,
                            })
                        })
                        .collect();
                    let a = [&a[0][..], &a[1][..], &a[2][..], &a[3][..]];
                    assert_dot4_exact(t, ty, n, &w, a, &format!("weights {wname}"));
                }
            }
        }
    });
}

/// Where the packed-activation kernels are: Q4_0 and Q8_0 in the AVX-512 table, every legacy
/// and K-quant type in the NEON tables (the i-quants keep their scalar kernels there), nothing
/// elsewhere.
#[test]
fn packed_kernels_are_where_expected() {
    for t in dot::tables() {
        for ty in weight_types() {
            let want = match t.isa {
                "avx512vnni" => matches!(ty, GgmlType::Q4_0 | GgmlType::Q8_0),
                "neon" | "neondot" => matches!(ty.family(), Family::Legacy | Family::KQuant),
                _ => false,
            };
            assert_eq!(t.kernel(ty).unwrap().has_packed(), want, "{} {ty}", t.isa);
        }
    }
}

/// `Kernel::matvec` over 0..=9 weight rows (groups of four and the rest) equals the table's dot
/// product on each row, bit for bit, in every table.
#[test]
fn matvec_equals_dots_on_many_rows() {
    let mut rng = Rng::new(6);
    run_tables(dot::tables(), SIMD, |t| {
        for ty in weight_types() {
            let k = t.kernel(ty).unwrap();
            for n in dot4_lengths(ty) {
                let rows: Vec<Vec<u8>> = (0..9)
                    .map(|r| {
                        let scale = [1e-3f32, 1.0, 40.0][r % 3];
                        encode(ty, &rng.normals(n, scale))
                    })
                    .collect();
                let a = activations(ty, &rng.normals(n, 1.0));
                let packed = k.pack_rows(n, &a);
                for count in 0..=rows.len() {
                    let w = rows[..count].concat();
                    let mut out = vec![f32::NAN; count];
                    k.matvec(n, &w, &packed, 0, &mut out);
                    for (r, (got, w)) in out.iter().zip(&rows).enumerate() {
                        let want = (k.dot)(n, w, &a);
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{} {ty} n={n} row {r} of {count}: matvec {got} vs dot {want}",
                            t.isa
                        );
                    }
                }
            }
        }
    });
}

/// The NEON tables' quantized kernels equal the scalar reference bit for bit: dot, matvec
/// (through `dot1`) and `dot4`, on encoded rows at several scales, raw fp16 factors of either
/// sign (normal and subnormal), and byte patterns at the extremes of every encoding against
/// activation levels including −128.
#[cfg(target_arch = "aarch64")]
#[test]
fn neon_equals_scalar_bit_for_bit() {
    let mut rng = Rng::new(7);
    let exact = dot::tables()
        .into_iter()
        .filter(|t| BIT_EXACT.contains(&t.isa));
    run_tables(exact, BIT_EXACT, |t| {
        let scal = dot::scalar_table();
        for ty in weight_types().filter(|ty| ty.is_quantized()) {
            let k = t.kernel(ty).unwrap();
            for n in dot4_lengths(ty) {
                let mut cases: Vec<(String, Vec<u8>, [Vec<u8>; 4])> = Vec::new();
                for scale in [1e-3f32, 1.0, 40.0] {
                    let w = encode(ty, &rng.normals(n, scale));
                    let a = std::array::from_fn(|_| activations(ty, &rng.normals(n, 1.0 / scale)));
                    cases.push((format!("scale {scale}"), w, a));
                }
                let d = random_f16(&mut rng);
                let mut r2 = Rng::new(rng.next_u64());
                let w = raw_weights(ty, n, d, &mut || r2.next_u64() as u8);
                let a = std::array::from_fn(|_| activations(ty, &rng.normals(n, 1.0)));
                cases.push((format!("raw scale {d:#06x}"), w, a));
                if n <= 1024 {
                    for (wname, mut fill) in patterns(&mut rng) {
                        let w = raw_weights(ty, n, random_f16(&mut rng), &mut *fill);
                        let mut r2 = Rng::new(rng.next_u64());
                        let a = [127i8, -127, -128, 0].map(|l| {
                            let mut r3 = Rng::new(r2.next_u64());
                            raw_activations(ty, n, &mut || match l {
                                0 => r3.next_u64() as i8,
                                l => l,
                            })
                        });
                        cases.push((format!("weights {wname}"), w, a));
                    }
                }
                for (what, w, a) in &cases {
                    let all = a.concat();
                    let rows = k.pack_rows(n, &all);
                    let got4 = k.dot4(n, w, &rows, 0);
                    for (j, a) in a.iter().enumerate() {
                        let want = (scal.kernel(ty).unwrap().dot)(n, w, a);
                        let got = [(k.dot)(n, w, a), k.dot1(n, w, &rows, j), got4[j]];
                        for (how, got) in ["dot", "dot1", "dot4"].iter().zip(got) {
                            assert!(
                                got.to_bits() == want.to_bits(),
                                "{} {ty} n={n} {what} token {j}: {how} {got} vs scalar {want}",
                                t.isa
                            );
                        }
                    }
                }
            }
        }
    });
}
