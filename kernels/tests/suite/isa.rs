//! Which ISA tables a test ran, against the ones this CPU offers. A test that loops over the
//! tables the crate reports would otherwise test nothing, silently, where the crate failed to
//! build a table or the CPU lacks the ISA. The CPU's features are read here, independently of
//! the crate's own detection.

use llq_kernels::dot::DotTable;
use std::io::Write;

/// The tables this CPU can run, by name, from its reported features: AVX2 + FMA + F16C for
/// `avx2`, AVX-VNNI (with those) for `avxvnni`, and AVX-512 F/BW/VL/VNNI (with those) for
/// `avx512vnni`; on aarch64 NEON for `neon` and the dot-product extension (with it) for
/// `neondot`.
pub fn cpu_isas() -> Vec<&'static str> {
    std::iter::once("scalar").chain(simd_isas()).collect()
}

#[cfg(target_arch = "x86_64")]
fn simd_isas() -> Vec<&'static str> {
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    let avx512 = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni");
    let avxvnni = is_x86_feature_detected!("avxvnni");
    let mut isas = Vec::new();
    if avx2 {
        isas.push("avx2");
        if avxvnni {
            isas.push("avxvnni");
        }
        if avx512 {
            isas.push("avx512vnni");
        }
    }
    isas
}

#[cfg(target_arch = "aarch64")]
fn simd_isas() -> Vec<&'static str> {
    let mut isas = Vec::new();
    if std::arch::is_aarch64_feature_detected!("neon") {
        isas.push("neon");
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            isas.push("neondot");
        }
    }
    isas
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn simd_isas() -> Vec<&'static str> {
    Vec::new()
}

/// Run `f` on each of `tables`, then check the ISAs in `isas` (those whose table has what the
/// test exercises): each one this CPU offers must have run, or the test fails when references
/// are required (CI, `LLQ_REQUIRE_REFERENCES`); one the CPU lacks is reported as not tested.
pub fn run_tables(
    tables: impl IntoIterator<Item = &'static DotTable>,
    isas: &[&str],
    mut f: impl FnMut(&'static DotTable),
) {
    let mut ran = Vec::new();
    for t in tables {
        f(t);
        ran.push(t.isa);
    }
    println!("tables run: {ran:?}");
    let cpu = cpu_isas();
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    for isa in isas {
        match (cpu.contains(isa), ran.contains(isa)) {
            (_, true) => {}
            (true, false) if llq_testsupport::references_required() => {
                panic!("the CPU offers {isa} but {test} ran no {isa} table (ran {ran:?})")
            }
            (true, false) => note(&format!("{test}: the CPU offers {isa} but no table ran")),
            (false, false) => note(&format!("{test}: {isa} not tested, the CPU lacks it")),
        }
    }
}

/// A line on the terminal, past the test harness's output capture.
fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "NOTE: {line}");
}
