//! `llq inspect FILE`: header, metadata and tensor table of a GGUF, safetensors or .pth file.

use crate::error::Result;
use crate::inspect;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct InspectArgs {
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let d = inspect::describe(&a.file)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&d).expect("JSON values serialize")
        );
    } else {
        print!("{}", inspect::render_text(&a.file, &d));
    }
    Ok(())
}
