//! `llq meta FILE`: print a GGUF's metadata; with `-o OUT`, write a copy with the metadata
//! edited (a broken chat template fixed without reconverting).

use super::args::parse_pair;
use crate::error::Result;
use crate::metadata_edit::{self, Edit};
use crate::tokenizer::chat;
use clap::Args;
use llq_formats::gguf::GgufFile;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct MetaArgs {
    /// A GGUF (the first file of a split set).
    file: PathBuf,
    /// Write the edited copy here (a split input stays split, named after OUT).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print the metadata as one JSON object (without -o).
    #[arg(long, conflicts_with = "output")]
    json: bool,
    /// KEY=VALUE: an existing key keeps its type; a new one takes TYPE:VALUE (u32:4096,
    /// f32:1e-5, bool:true, str:text, …). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_pair, requires = "output")]
    set: Vec<(String, String)>,
    /// KEY=VALUE with a string value. Repeatable.
    #[arg(long = "set-str", value_name = "KEY=VALUE", value_parser = parse_pair, requires = "output")]
    set_str: Vec<(String, String)>,
    /// Remove KEY. Repeatable.
    #[arg(long, value_name = "KEY", requires = "output")]
    delete: Vec<String>,
    /// Replace the default chat template: a file of Jinja text or a built-in name (as convert).
    #[arg(long, value_name = "FILE|NAME", requires = "output")]
    chat_template: Option<String>,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(a: MetaArgs) -> Result<()> {
    let Some(out) = &a.output else {
        let file = GgufFile::open(&a.file)?;
        if a.json {
            let map: serde_json::Map<String, serde_json::Value> = file
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&map).expect("JSON values serialize")
            );
        } else {
            for (k, v) in &file.metadata {
                println!("{k:<44} {:<8} {}", v.value_type().name(), v.to_json());
            }
        }
        return Ok(());
    };
    let mut edits: Vec<Edit> = a.delete.iter().cloned().map(Edit::Delete).collect();
    edits.extend(a.set.iter().map(|(key, value)| Edit::Set {
        key: key.clone(),
        value: value.clone(),
    }));
    edits.extend(a.set_str.iter().map(|(key, value)| Edit::SetStr {
        key: key.clone(),
        value: value.clone(),
    }));
    if let Some(t) = &a.chat_template {
        edits.push(Edit::ChatTemplate(chat::resolve(t)?));
    }
    for path in metadata_edit::rewrite(&a.file, out, &edits, a.force)? {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
