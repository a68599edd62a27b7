//! `llq verify DIR`: a checkpoint folder's integrity, file by file.

use crate::checkpoint::verify;
use crate::error::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    dir: PathBuf,
}

pub fn run(a: VerifyArgs) -> Result<()> {
    let report = verify::verify(&a.dir)?;
    for line in &report.checked {
        println!("{line}");
    }
    println!("{}: OK", a.dir.display());
    Ok(())
}
