//! The runtime commands: tokenize, run, perplexity, bench.

use crate::error::{Error, Result};
use crate::eval::perplexity;
use crate::progress;
use crate::runtime::bench;
use crate::runtime::forward::Session;
use crate::runtime::generate::{self, GenerateOptions};
use crate::runtime::model::Model;
use crate::runtime::sampler::SamplerConfig;
use crate::runtime::tokenizer::Tokenizer;
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A UTF-8 text file, or standard input for "-".
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = if path == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(|e| Error::io(path, "cannot read standard input", e))?;
        b
    } else {
        std::fs::read(path).map_err(|e| Error::io(path, "cannot read", e))?
    };
    String::from_utf8(bytes).map_err(|e| {
        Error::file(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// A model and its tokenizer.
fn load(model: &Path) -> Result<(Model, Tokenizer)> {
    let m = Model::load(model)?;
    let tok = Tokenizer::from_gguf(&m.file).map_err(|e| Error::file(model, e))?;
    Ok((m, tok))
}

/// `llq tokenize`: one line of space-separated ids (or one JSON array) per input line.
pub fn tokenize(
    model: &Path,
    file: Option<&Path>,
    prompt: Option<&str>,
    json: bool,
    add_bos: bool,
) -> Result<()> {
    let gguf = llq_formats::gguf::GgufFile::open(model)?;
    let tok = Tokenizer::from_gguf(&gguf).map_err(|e| Error::file(model, e))?;
    let text = match (prompt, file) {
        (Some(p), _) => p.to_string(),
        (None, Some(path)) => read_text(path)?,
        (None, None) => return Err(Error::Usage("give -f TEXT or -p PROMPT".into())),
    };
    // A prompt is one input; a file is its lines ("\n" or "\r\n" endings, as str::lines).
    let lines: Vec<&str> = match prompt {
        Some(_) => vec![text.as_str()],
        None => text.lines().collect(),
    };
    // BOS (and EOS) as the model's add_bos_token / add_eos_token say, unless --no-bos.
    let ids: Vec<Vec<u32>> = lines.iter().map(|l| tok.tokenize(l, add_bos)).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let write_err = |e| Error::io("<stdout>", "cannot write", e);
    if json {
        let s = serde_json::to_string(&ids).expect("ids serialize");
        writeln!(out, "{s}").map_err(write_err)?;
    } else {
        for line in &ids {
            let strs: Vec<String> = line.iter().map(u32::to_string).collect();
            writeln!(out, "{}", strs.join(" ")).map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)
}

/// `llq run`: stream generated text to stdout, speeds to stderr.
pub fn run(model: &Path, opts: &GenerateOptions) -> Result<()> {
    let (m, tok) = load(model)?;
    if opts.n_ctx > m.hp.context_length {
        eprintln!(
            "note: --ctx {} exceeds the model's trained context of {}",
            opts.n_ctx, m.hp.context_length
        );
    }
    let session = Session::new(&m);
    let mut out = std::io::stdout().lock();
    let stats = generate::generate(&session, &tok, opts, &mut out)?;
    let _ = writeln!(out);
    let rate = |n: usize, s: f64| n as f64 / s.max(1e-9);
    eprintln!(
        "prompt: {} tokens, {:.1} tokens/s; generation: {} tokens, {:.1} tokens/s",
        stats.prompt_tokens,
        rate(stats.prompt_tokens, stats.prompt_seconds),
        stats.generated_tokens,
        rate(stats.generated_tokens, stats.generate_seconds)
    );
    Ok(())
}

/// `llq perplexity`: llama.cpp's method over a text file.
pub fn perplexity(
    model: &Path,
    text_path: &Path,
    n_ctx: usize,
    max_chunks: Option<usize>,
    json: bool,
) -> Result<()> {
    let (m, tok) = load(model)?;
    let text = read_text(text_path)?;
    let tokens = tok.tokenize(&text, true);
    if tokens.len() < 2 * n_ctx {
        return Err(Error::file(
            text_path,
            format!(
                "has {} tokens; perplexity with a context of {n_ctx} needs at least {}",
                tokens.len(),
                2 * n_ctx
            ),
        ));
    }
    let n_chunks = perplexity::chunk_count(tokens.len(), n_ctx, max_chunks);
    let session = Session::new(&m);
    let bar = progress::count_bar(n_chunks as u64, "chunks");
    let r = perplexity::perplexity(&session, &tokens, n_ctx, n_chunks, tok.bos(), |_, ppl| {
        bar.set_message(format!("PPL {ppl:.4}"));
        bar.inc(1);
    });
    bar.finish_and_clear();
    if json {
        let j = json!({
            "ppl": r.ppl, "ppl_err": r.ppl_err, "n_ctx": r.n_ctx, "chunks": r.n_chunks,
            "tokens": tokens.len(), "scored": r.n_scored, "chunk_nll": r.chunk_nll,
        });
        println!("{j}");
    } else {
        println!("PPL = {:.4} +/- {:.5}", r.ppl, r.ppl_err);
    }
    Ok(())
}

/// What `llq imatrix` was asked.
pub struct ImatrixArgs {
    pub model: PathBuf,
    pub text: PathBuf,
    pub output: PathBuf,
    pub n_ctx: usize,
    pub max_chunks: Option<usize>,
    pub process_output: bool,
    pub progress: bool,
}

/// `llq imatrix`: llama-imatrix's statistics over a text, written as a legacy .dat file.
pub fn imatrix(a: &ImatrixArgs) -> Result<()> {
    let (m, tok) = load(&a.model)?;
    let text = read_text(&a.text)?;
    let tokens = tok.tokenize(&text, true);
    if a.n_ctx == 0 || tokens.len() < 2 * a.n_ctx {
        return Err(Error::file(
            &a.text,
            format!(
                "has {} tokens; an importance matrix with a context of {} needs at least {}",
                tokens.len(),
                a.n_ctx,
                2 * a.n_ctx
            ),
        ));
    }
    let n_chunks = perplexity::chunk_count(tokens.len(), a.n_ctx, a.max_chunks);
    let bar = if a.progress {
        progress::count_bar(n_chunks as u64, "chunks")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let r = crate::eval::imatrix::compute(
        &m,
        &tokens,
        a.n_ctx,
        n_chunks,
        tok.bos(),
        a.process_output,
        |_| bar.inc(1),
    );
    bar.finish_and_clear();
    let dataset = a.text.to_string_lossy();
    let bytes = r.to_legacy(&dataset).to_bytes();
    std::fs::write(&a.output, bytes).map_err(|e| Error::io(&a.output, "cannot write", e))?;
    eprintln!(
        "{}: {} matrices, {} chunks of {} tokens",
        a.output.display(),
        r.stats.len(),
        n_chunks,
        a.n_ctx
    );
    Ok(())
}

/// `llq bench`: pp/tg tokens per second and the generation roofline.
pub fn bench(model: &Path, pp: usize, tg: usize, reps: usize, json: bool) -> Result<()> {
    let m = Model::load(model)?;
    let session = Session::new(&m);
    let r = bench::run(&session, pp, tg, reps);
    let roof = r.roofline_tok_s();
    if json {
        let j = json!({
            "model": model, "kernels": llq_kernels::dot::active_isa(),
            "threads": rayon::current_num_threads(),
            "pp_tokens": r.pp_tokens, "pp_tok_s": r.pp_tok_s,
            "tg_tokens": r.tg_tokens, "tg_tok_s": r.tg_tok_s,
            "bytes_per_token": r.bytes_per_token, "read_gb_s": r.read_bandwidth / 1e9,
            "roofline_tok_s": roof, "roofline_fraction": r.tg_tok_s / roof,
        });
        println!("{j}");
    } else {
        println!(
            "kernels {}, {} threads",
            llq_kernels::dot::active_isa(),
            rayon::current_num_threads()
        );
        println!("pp {:>4}: {:>9.2} tokens/s", r.pp_tokens, r.pp_tok_s);
        println!("tg {:>4}: {:>9.2} tokens/s", r.tg_tokens, r.tg_tok_s);
        println!(
            "roofline: {:.1} GB/s read / {:.1} MB per token = {:.2} tokens/s; tg reaches {:.0} %",
            r.read_bandwidth / 1e9,
            r.bytes_per_token as f64 / 1e6,
            roof,
            100.0 * r.tg_tok_s / roof
        );
    }
    Ok(())
}

/// Sampling flags of `llq run`.
pub fn sampler(temp: f32, top_k: usize, top_p: f32, seed: u64) -> SamplerConfig {
    SamplerConfig {
        temperature: temp,
        top_k,
        top_p,
        seed,
    }
}
