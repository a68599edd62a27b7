//! `llq bench`: pp/tg tokens per second and the generation roofline.

use crate::error::Result;
use crate::runtime::bench;
use crate::runtime::forward::Session;
use crate::runtime::model::Model;
use crate::runtime::run_command;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct BenchArgs {
    model: PathBuf,
    /// Prompt tokens.
    #[arg(short = 'p', long, default_value_t = 512)]
    pp: usize,
    /// Generated tokens.
    #[arg(short = 'n', long, default_value_t = 128)]
    tg: usize,
    /// Repetitions (the best is reported).
    #[arg(short = 'r', long, default_value_t = 3)]
    reps: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(a: BenchArgs) -> Result<()> {
    run_command(|| {
        let m = Model::load(&a.model)?;
        let session = Session::new(&m);
        let r = bench::run(&session, a.pp, a.tg, a.reps);
        let roof = r.roofline_tok_s();
        let isa = llq_kernels::dot::active_isa();
        if a.json {
            let j = json!({
                "model": a.model, "kernels": isa,
                "threads": rayon::current_num_threads(),
                "pp_tokens": r.pp_tokens, "pp_tok_s": r.pp_tok_s,
                "tg_tokens": r.tg_tokens, "tg_tok_s": r.tg_tok_s,
                "bytes_per_token": r.bytes_per_token, "read_gb_s": r.read_bandwidth / 1e9,
                "roofline_tok_s": roof, "roofline_fraction": r.tg_tok_s / roof,
            });
            println!("{j}");
        } else {
            println!("kernels {isa}, {} threads", rayon::current_num_threads());
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
    })
}
