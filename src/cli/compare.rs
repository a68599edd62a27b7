//! `llq compare`, `llq error` and `llq plan`: what quantization cost, and what it would cost.
//!
//! Exit codes of compare: 0 all gates pass, 1 a gate failed (one-line reason), 2 a usage or
//! input error (every error from loading or checking the inputs is reported as such).

use super::eval::read_text;
use crate::convert::{self, ConvertOptions};
use crate::error::{Error, Result};
use crate::eval::compare::{self, CompareResult, Gates};
use crate::eval::plan::{self as sizing, PlanRow};
use crate::plan::PlanOptions;
use crate::progress;
use crate::runtime::forward::Session;
use crate::runtime::model::Model;
use crate::runtime::tokenizer::Tokenizer;
use crate::source::Source;
use llq_types::keys;
use llq_types::FileType;
use std::path::{Path, PathBuf};

/// Any error as an input error (exit code 2).
fn input(e: Error) -> Error {
    match e {
        Error::Usage(_) | Error::Interrupted => e,
        other => Error::Usage(other.to_string()),
    }
}

fn is_gguf(path: &Path) -> bool {
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| {
                let mut m = [0u8; 4];
                std::io::Read::read_exact(&mut f, &mut m).map(|_| m == *b"GGUF")
            })
            .unwrap_or(false)
}

/// A temporary file path removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempPath(std::env::temp_dir().join(format!("llq-{tag}-{}-{n}.gguf", std::process::id())))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn convert_to(src: &Path, out: &Path, ft: FileType) -> Result<u64> {
    let opts = ConvertOptions {
        plan: PlanOptions::new(ft),
        overwrite: true,
        allow_nonfinite: false,
        allow_requantize: false,
        progress: false,
        imatrix: None,
        quant_mode: Default::default(),
        source: Default::default(),
    };
    Ok(convert::convert(src, out, &opts)?.output_bytes)
}

/// The reference model: a GGUF as is, or a checkpoint folder converted to an F32 GGUF in the
/// temp folder, mapped, and unlinked (the mapping keeps the data until the model is dropped).
fn load_reference(path: &Path) -> Result<Model> {
    if is_gguf(path) {
        return Model::load(path);
    }
    let tmp = TempPath::new("ref-f32");
    convert_to(path, &tmp.0, FileType::F32)?;
    Model::load(&tmp.0)
}

fn tokens_of(m: &Model) -> Option<&llq_formats::gguf::Value> {
    m.file.get(keys::tokenizer::TOKENS)
}

/// REF and QUANT must be the same kind of model with the same vocabulary.
fn check_pair(r: &Model, q: &Model, ref_path: &Path, q_path: &Path) -> Result<()> {
    let arch = |m: &Model| {
        m.file
            .get(keys::general::ARCHITECTURE)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string()
    };
    if arch(r) != arch(q) {
        return Err(Error::Usage(format!(
            "{} is a {} model but {} is a {} model",
            ref_path.display(),
            arch(r),
            q_path.display(),
            arch(q)
        )));
    }
    if r.hp.n_vocab != q.hp.n_vocab || tokens_of(r) != tokens_of(q) {
        return Err(Error::Usage(format!(
            "{} and {} have different vocabularies ({} and {} tokens{})",
            ref_path.display(),
            q_path.display(),
            r.hp.n_vocab,
            q.hp.n_vocab,
            if r.hp.n_vocab == q.hp.n_vocab {
                ", different token texts"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// Tokenize the text with the reference's tokenizer; at least two contexts of tokens.
fn text_tokens(r: &Model, text_path: &Path, n_ctx: usize) -> Result<(Vec<u32>, u32)> {
    if n_ctx < 4 {
        return Err(Error::Usage(format!(
            "--ctx {n_ctx} is too small (at least 4)"
        )));
    }
    let tok = Tokenizer::from_gguf(&r.file).map_err(|e| Error::Usage(e.to_string()))?;
    let text = read_text(text_path)?;
    let tokens = tok.tokenize(&text, true);
    if tokens.len() < 2 * n_ctx {
        return Err(Error::Usage(format!(
            "{}: has {} tokens; compare with a context of {n_ctx} needs at least {} (two chunks)",
            text_path.display(),
            tokens.len(),
            2 * n_ctx
        )));
    }
    Ok((tokens, tok.bos()))
}

fn run_compare(
    r: &Model,
    q: &Model,
    tokens: &[u32],
    bos: u32,
    n_ctx: usize,
    chunks: Option<usize>,
    quiet: bool,
) -> CompareResult {
    let n = crate::eval::perplexity::chunk_count(tokens.len(), n_ctx, chunks);
    let bar = (!quiet).then(|| progress::count_bar(n as u64, "chunks"));
    let (sr, sq) = (Session::new(r), Session::new(q));
    let res = compare::compare(&sr, &sq, tokens, n_ctx, chunks, bos, |_, kld| {
        if let Some(bar) = &bar {
            bar.set_message(format!("KLD {kld:.6}"));
            bar.inc(1);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    res
}

/// Options of `llq compare`.
pub struct CompareArgs {
    pub reference: PathBuf,
    pub quant: PathBuf,
    pub text: Option<PathBuf>,
    pub ctx: usize,
    pub chunks: Option<usize>,
    pub json: Option<PathBuf>,
    pub per_tensor: bool,
    pub gates: Gates,
    pub quiet: bool,
}

/// `llq compare`.
pub fn compare_cmd(a: &CompareArgs) -> Result<()> {
    let result = compare_inner(a).map_err(input)?;
    if let Some(r) = result {
        if let Some(reason) = a.gates.check(&r) {
            // Exit code 1: a gate, not an input problem.
            return Err(Error::file(&a.quant, format!("gate failed: {reason}")));
        }
    }
    Ok(())
}

fn compare_inner(a: &CompareArgs) -> Result<Option<CompareResult>> {
    if a.chunks == Some(0) {
        return Err(Error::Usage("--chunks must be at least 1".into()));
    }
    let mut json = serde_json::Map::new();
    let mut result = None;
    if let Some(text) = &a.text {
        let q = Model::load(&a.quant)?;
        let r = load_reference(&a.reference)?;
        check_pair(&r, &q, &a.reference, &a.quant)?;
        let (tokens, bos) = text_tokens(&r, text, a.ctx)?;
        let res = run_compare(&r, &q, &tokens, bos, a.ctx, a.chunks, a.quiet);
        print!("{}", compare::render_table(&res));
        if let serde_json::Value::Object(m) = serde_json::to_value(&res).expect("serializes") {
            json.extend(m);
        }
        result = Some(res);
    } else if !a.per_tensor {
        return Err(Error::Usage(
            "give -f TEXT (or --per-tensor for weight errors only)".into(),
        ));
    }
    if a.per_tensor {
        let rows = per_tensor(&a.reference, &a.quant)?;
        json.insert(
            "per_tensor".into(),
            serde_json::to_value(&rows).expect("serializes"),
        );
    }
    if let Some(path) = &a.json {
        let s = serde_json::to_string_pretty(&json).expect("serializes");
        std::fs::write(path, s + "\n").map_err(|e| Error::io(path, "cannot write", e))?;
    }
    Ok(result)
}

fn per_tensor(reference: &Path, quant: &Path) -> Result<Vec<compare::TensorErrorRow>> {
    let r = Source::open(reference)?;
    let q = Source::open(quant)?;
    let rows = compare::tensor_errors(&r, &q).map_err(Error::Usage)?;
    println!(
        "{:<28} {:>6} {:>6} {:>12}",
        "tensor", "ref", "quant", "rel RMSE"
    );
    for row in &rows {
        println!(
            "{:<28} {:>6} {:>6} {:>12.6}",
            row.name, row.ref_type, row.quant_type, row.rel_rmse
        );
    }
    Ok(rows)
}

/// `llq error REF QUANT`: per-tensor relative RMSE, worst first.
pub fn error_cmd(reference: &Path, quant: &Path, json: Option<&Path>) -> Result<()> {
    let rows = per_tensor(reference, quant).map_err(input)?;
    if let Some(path) = json {
        let s = serde_json::to_string_pretty(&rows).expect("serializes");
        std::fs::write(path, s + "\n").map_err(|e| Error::io(path, "cannot write", e))?;
    }
    Ok(())
}

/// Options of `llq plan`.
pub struct PlanArgs {
    pub src: PathBuf,
    pub ram: Option<String>,
    pub ctx: usize,
    pub json: bool,
    pub measure: Option<PathBuf>,
    pub measure_ctx: usize,
    pub chunks: Option<usize>,
}

/// `llq plan`.
pub fn plan_cmd(a: &PlanArgs) -> Result<()> {
    plan_inner(a).map_err(input)
}

fn plan_inner(a: &PlanArgs) -> Result<()> {
    let ram = a
        .ram
        .as_deref()
        .map(sizing::parse_bytes)
        .transpose()
        .map_err(Error::Usage)?;
    let source = Source::open(&a.src)?;
    let mut rows = sizing::plan_rows(&source, a.ctx, ram)?;
    if let Some(text) = &a.measure {
        measure(a, text, &mut rows)?;
    }
    if a.json {
        let j = serde_json::json!({
            "source": a.src, "ctx": a.ctx, "ram": ram, "types": rows,
        });
        println!("{}", serde_json::to_string_pretty(&j).expect("serializes"));
        return Ok(());
    }
    let measured = a.measure.is_some();
    print!(
        "{:<8} {:>14} {:>11} {:>7} {:>11} {:>11} {:>5}",
        "type", "file bytes", "file", "bpw", "KV cache", "total", "fits"
    );
    if measured {
        print!(" {:>10} {:>8}", "KLD", "top-1");
    }
    println!();
    for r in &rows {
        print!(
            "{:<8} {:>14} {:>11} {:>7.3} {:>11} {:>11} {:>5}",
            r.file_type,
            r.file_bytes,
            sizing::human(r.file_bytes),
            r.bpw,
            sizing::human(r.kv_bytes),
            sizing::human(r.total_bytes),
            match r.fits {
                None => "-",
                Some(true) => "yes",
                Some(false) => "no",
            }
        );
        if measured {
            print!(
                " {:>10.6} {:>7.3}%",
                r.kld_mean.unwrap_or(f64::NAN),
                100.0 * r.top1.unwrap_or(f64::NAN)
            );
        }
        println!();
    }
    println!("KV cache: F16 keys and values at ctx {}", a.ctx);
    Ok(())
}

/// Convert to every type in turn (temp files) and compare each with the F32 reference.
fn measure(a: &PlanArgs, text: &Path, rows: &mut [PlanRow]) -> Result<()> {
    let r = load_reference(&a.src)?;
    let (tokens, bos) = text_tokens(&r, text, a.measure_ctx)?;
    let quantized_src = !is_gguf(&a.src)
        || r.layers.iter().all(|l| !l.wq.ty.is_quantized()) && !r.output.ty.is_quantized();
    if !quantized_src {
        return Err(Error::Usage(format!(
            "{}: --measure needs an unquantized source",
            a.src.display()
        )));
    }
    for row in rows.iter_mut() {
        let ft = FileType::from_name(row.file_type).expect("a file type's own name");
        eprintln!("measuring {}", row.file_type);
        let tmp = TempPath::new("plan");
        convert_to(&a.src, &tmp.0, ft)?;
        let q = Model::load(&tmp.0)?;
        let res = run_compare(&r, &q, &tokens, bos, a.measure_ctx, a.chunks, true);
        row.kld_mean = Some(res.kld_mean);
        row.top1 = Some(res.top1);
    }
    Ok(())
}
