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

mod dot_common;

use dot_common::*;
use llq_kernels::dot::{self, DotTable};
use llq_types::GgmlType;

fn lengths(ty: GgmlType) -> &'static [usize] {
    match ty.block_size() {
        1 => &[1, 7, 8, 31, 32, 33, 100, 256, 1000, 4096],
        32 => &[32, 64, 96, 256, 800, 4096],
        _ => &[256, 512, 768, 4096],
    }
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

/// The SIMD tables this CPU supports (AVX2, AVX-512), each compared with the scalar reference.
fn simd_tables() -> Vec<&'static DotTable> {
    dot::tables().into_iter().skip(1).collect()
}

#[test]
fn simd_table_is_chosen_when_the_cpu_has_it() {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        let avx512 = avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni");
        let best = match (avx512, avx2) {
            (true, _) => "avx512vnni",
            (false, true) => "avx2",
            _ => "scalar",
        };
        assert_eq!(dot::best_table().isa, best);
        assert_eq!(
            dot::table_named("avx2").map(|t| t.isa),
            avx2.then_some("avx2")
        );
        assert_eq!(
            dot::table_named("avx512vnni").map(|t| t.isa),
            avx512.then_some("avx512vnni")
        );
        assert_eq!(
            dot::tables().len(),
            1 + usize::from(avx2) + usize::from(avx512)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    assert_eq!(dot::best_table().isa, "scalar");
    assert_eq!(dot::scalar_table().isa, "scalar");
    assert_eq!(dot::tables()[0].isa, "scalar");
}

#[test]
fn every_weight_type_has_a_kernel() {
    for ty in WEIGHT_TYPES {
        let mut all = dot::tables();
        all.extend([dot::best_table(), dot::table()]);
        for t in all {
            let k = t.kernel(ty).unwrap_or_else(|| panic!("{ty} in {}", t.isa));
            assert_eq!(Some(k.act), ty.activation());
        }
    }
    assert!(dot::scalar_table().kernel(GgmlType::Q8_1).is_none());
}

#[test]
fn simd_equals_scalar_on_encoded_rows() {
    for simd in simd_tables() {
        encoded_rows(simd);
    }
}

fn encoded_rows(simd: &DotTable) {
    let (isa, scal) = (simd.isa, dot::scalar_table());
    let mut rng = Rng::new(1);
    for ty in WEIGHT_TYPES {
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
    let mut r2 = Rng::new(rng.next());
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
        ("random", Box::new(move || r2.next() as u8)),
    ]
}

fn levels(rng: &mut Rng) -> Vec<Named<i8>> {
    let mut r2 = Rng::new(rng.next());
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
        (
            "random",
            Box::new(move || (r2.next() % 255) as i8 as i16 as i8),
        ),
    ]
}

#[test]
fn integer_parts_are_exact_on_adversarial_blocks() {
    for simd in simd_tables() {
        adversarial_blocks(simd);
    }
}

fn adversarial_blocks(simd: &DotTable) {
    let (isa, scal) = (simd.isa, dot::scalar_table());
    let mut rng = Rng::new(2);
    let limit = f64::from(1u32 << 24);
    let mut exact_checks = 0;
    for ty in WEIGHT_TYPES {
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
    for simd in simd_tables() {
        random_scales(simd);
    }
}

fn random_scales(simd: &DotTable) {
    let (isa, scal) = (simd.isa, dot::scalar_table());
    let mut rng = Rng::new(3);
    for ty in WEIGHT_TYPES {
        for &n in lengths(ty) {
            for _ in 0..4 {
                // A finite fp16 scale of either sign, normal or subnormal.
                let d = loop {
                    let bits = rng.next() as u16;
                    if bits & 0x7c00 != 0x7c00 {
                        break bits;
                    }
                };
                let mut r2 = Rng::new(rng.next());
                let w = raw_weights(ty, n, d, &mut || r2.next() as u8);
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
    let w = vec![0u8; 18 * 2];
    let a = vec![0u8; 34 * 2];
    let k = dot::kernel(GgmlType::Q4_0).unwrap();
    assert_eq!((k.dot)(64, &w, &a), 0.0);
    let r = std::panic::catch_unwind(|| (k.dot)(64, &w[..18], &a));
    assert!(r.is_err());
    let r = std::panic::catch_unwind(|| (k.dot)(60, &w, &a));
    assert!(r.is_err());
}

/// CI runs the suite again with `LLQ_KERNELS=scalar` (and `=avx2`). Here: with the variable set
/// the active table must be the one it names; without it, run this very test again in child
/// processes with each value, which then take the first branches.
#[test]
fn llq_kernels_forces_a_table() {
    match std::env::var("LLQ_KERNELS").as_deref() {
        Ok("scalar") => {
            assert_eq!(dot::active_isa(), "scalar");
            assert!(std::ptr::eq(dot::table(), dot::scalar_table()));
            return;
        }
        Ok("avx2") => {
            let want = dot::table_named("avx2").unwrap_or(dot::scalar_table());
            assert!(std::ptr::eq(dot::table(), want));
            assert_eq!(dot::active_isa(), want.isa);
            return;
        }
        _ => {}
    }
    assert_eq!(dot::active_isa(), dot::best_table().isa);
    for value in ["scalar", "avx2"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["llq_kernels_forces_a_table", "--exact", "--nocapture"])
            .env("LLQ_KERNELS", value)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "LLQ_KERNELS={value}: {stdout}");
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
    for t in dot::tables() {
        for ty in WEIGHT_TYPES {
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
                let d = loop {
                    let bits = rng.next() as u16;
                    if bits & 0x7c00 != 0x7c00 {
                        break bits;
                    }
                };
                let mut r2 = Rng::new(rng.next());
                let w = raw_weights(ty, n, d, &mut || r2.next() as u8);
                let a: Vec<Vec<u8>> = (0..4)
                    .map(|_| activations(ty, &rng.normals(n, 1.0)))
                    .collect();
                let a = [&a[0][..], &a[1][..], &a[2][..], &a[3][..]];
                assert_dot4_exact(t, ty, n, &w, a, &format!("raw scale {d:#06x}"));
            }
        }
    }
}

#[test]
fn dot4_equals_four_dots_on_adversarial_rows() {
    let mut rng = Rng::new(5);
    for t in dot::tables() {
        for ty in WEIGHT_TYPES {
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
    }
}

#[test]
fn avx512_has_packed_kernels_for_q4_0_and_q8_0() {
    for t in dot::tables() {
        for ty in WEIGHT_TYPES {
            let want = t.isa == "avx512vnni" && matches!(ty, GgmlType::Q4_0 | GgmlType::Q8_0);
            assert_eq!(t.kernel(ty).unwrap().has_packed(), want, "{} {ty}", t.isa);
        }
    }
}
