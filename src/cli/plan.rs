//! `llq plan`: per file type, the exact size `convert` would write, bits per weight, the KV
//! cache at a context, whether it fits a RAM budget, and (with --measure) what it costs.

use super::args;
use crate::checkpoint::Source;
use crate::error::Result;
use crate::eval::plot::{self, Point};
use crate::eval::sizing;
use crate::quantize::fit;
use crate::runtime::run_command;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Checkpoint folder or GGUF.
    src: PathBuf,
    /// Memory available, e.g. 8GiB.
    #[arg(long, value_parser = args::bytes)]
    ram: Option<u64>,
    /// Context for the KV cache size.
    #[arg(long, default_value_t = 4096)]
    ctx: usize,
    #[arg(long)]
    json: bool,
    /// Also convert to each type and compare it with the F32 model on this text.
    #[arg(long, value_name = "TEXT")]
    measure: Option<PathBuf>,
    /// Context of the --measure comparisons.
    #[arg(long, default_value_t = 512)]
    measure_ctx: usize,
    /// With --measure: draw file size against KLD for every type to this SVG (the Pareto front
    /// and the --ram budget marked).
    #[arg(long, value_name = "FILE.svg", requires = "measure")]
    plot: Option<PathBuf>,
    /// Chunks of the --measure comparisons (default: all).
    #[arg(long, value_parser = args::count)]
    chunks: Option<usize>,
}

pub fn run(a: PlanArgs) -> Result<()> {
    let source = Source::open(&a.src)?;
    let mut rows = sizing::plan_rows(&source, a.ctx, a.ram)?;
    if let Some(text) = &a.measure {
        run_command(|| {
            sizing::measure(&a.src, text, a.measure_ctx, a.chunks, &mut rows, |ft| {
                eprintln!("measuring {ft}")
            })
        })?;
    }
    if let Some(svg) = &a.plot {
        let points: Vec<Point> = rows
            .iter()
            .map(|r| Point {
                label: r.file_type.name().to_string(),
                bytes: r.file_bytes,
                kld: r.kld_mean.unwrap_or(f64::NAN),
            })
            .collect();
        // The file's share of the RAM: what is left after the KV cache.
        let budget = a.ram.map(|ram| ram.saturating_sub(rows[0].kv_bytes));
        let title = format!("{}: size and KL divergence per type", a.src.display());
        plot::size_quality_svg(svg, &title, &points, budget)?;
    }
    // What --fit-ram would aim for with the same RAM and context.
    let fit_bytes = a
        .ram
        .map(|ram| fit::ram_budget(&source.hparams, ram, a.ctx));
    if a.json {
        let j = serde_json::json!({
            "source": a.src, "ctx": a.ctx, "ram": a.ram, "types": rows,
            "fit_ram_file_bytes": fit_bytes.flatten(),
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
            r.file_type.name(),
            r.file_bytes,
            human(r.file_bytes),
            r.bpw,
            human(r.kv_bytes),
            human(r.total_bytes),
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
    match fit_bytes {
        Some(Some(b)) => println!(
            "--fit-ram {} --ctx {}: the best file of at most {b} bytes ({}), after the KV cache \
             and the runtime's working memory",
            human(a.ram.unwrap_or(0)),
            a.ctx,
            human(b)
        ),
        Some(None) => {
            println!("--fit-ram: the RAM does not even hold the KV cache at this context")
        }
        None => {}
    }
    Ok(())
}

/// Human-readable binary size.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024f64.powi(3) {
        format!("{:.2} GiB", b / 1024f64.powi(3))
    } else if b >= 1024f64.powi(2) {
        format!("{:.2} MiB", b / 1024f64.powi(2))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}
