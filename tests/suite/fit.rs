//! `--fit` (issue 13): the file never exceeds the budget, a bigger budget never measures worse
//! on the calibration text, llama.cpp-readable mixed files come out of a GGUF too, and bad
//! budgets are refused before any output exists.

use crate::common::{corpus_split, fixture, llq, llq_fails, llq_ok, s};
use std::path::Path;

fn kld(reference: &Path, quant: &Path, text: &Path) -> f64 {
    let json = quant.with_extension("json");
    let args = [
        "compare",
        s(reference),
        s(quant),
        "-f",
        s(text),
        "--chunks",
        "2",
    ];
    llq_ok(&[&args[..], &["--json", s(&json), "--quiet"]].concat());
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    j["kld_mean"].as_f64().unwrap()
}

#[test]
fn fitted_files_fit_and_more_budget_never_measures_worse() {
    let Some((training, _)) = corpus_split() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("calibration.txt");
    // 300 KB of training text: two chunks of 512 tokens and more.
    std::fs::write(&text, &training[..300_000]).unwrap();
    let meta = fixture("meta");
    let f32 = dir.path().join("f32.gguf");
    llq_ok(&["convert", s(&meta), "-o", s(&f32), "-t", "f32", "--quiet"]);
    let mut previous = f64::INFINITY;
    for budget in [1_000_000u64, 1_250_000, 1_500_000, 2_000_000] {
        let out = dir.path().join(format!("fit-{budget}.gguf"));
        let b = budget.to_string();
        let args = ["convert", s(&meta), "-o", s(&out), "--fit", &b];
        llq_ok(
            &[
                &args[..],
                &["--calibration", s(&text), "--calibration-chunks", "2"],
            ]
            .concat(),
        );
        let size = std::fs::metadata(&out).unwrap().len();
        assert!(size <= budget, "{size} > {budget}");
        let k = kld(&f32, &out, &text);
        assert!(
            k <= previous,
            "budget {budget}: KLD {k} above the smaller budget's {previous}"
        );
        previous = k;
    }
    // From an F16 GGUF too, to a bits-per-weight budget.
    let f16 = dir.path().join("f16.gguf");
    llq_ok(&["quantize", s(&f32), s(&f16), "f16", "--quiet"]);
    let out = dir.path().join("bpw.gguf");
    llq_ok(&[
        "quantize",
        s(&f16),
        s(&out),
        "--target-bpw",
        "4.5",
        "--quiet",
        "--json",
        s(&dir.path().join("r.json")),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    let bpw = report["fit"]["bits_per_weight"].as_f64().unwrap();
    assert!(bpw <= 4.5 && bpw > 4.0, "{bpw}");
    assert!(report["fit"]["method"]
        .as_str()
        .unwrap()
        .contains("random tokens"));
}

#[test]
fn bad_budgets_are_refused_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let src = fixture("meta");
    let base = ["convert", s(&src), "-o", s(&out)];
    let smallest = llq_fails(
        &[&base[..], &["--fit", "500000"]].concat(),
        "no file fits 500000 bytes",
    );
    let stderr = String::from_utf8_lossy(&smallest.stderr);
    assert!(stderr.contains("the smallest, with every tensor at its smallest type, takes"));
    assert!(!out.exists());
    for extra in [
        &["--fit", "1MB", "--type", "q4_k_m"][..],
        &["--fit", "1MB", "--pure"],
        &["--fit", "lots"],
        &["--fit", "1MB", "--target-bpw", "4"],
        &["--calibration", "x.txt"],
    ] {
        let run = llq(&[&base[..], extra].concat());
        assert_eq!(run.status.code(), Some(2), "{extra:?}");
        assert!(!out.exists());
    }
}
