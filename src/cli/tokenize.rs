//! `llq tokenize`: one line of space-separated ids (or one JSON array) per input line.

use crate::error::{Error, Result};
use crate::eval::text::read_text;
use crate::tokenizer::chat::{self, Message};
use crate::tokenizer::Tokenizer;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// GGUF model whose tokenizer to use.
    model: PathBuf,
    /// Text file: each line is tokenized on its own ("-" reads standard input).
    #[arg(
        short,
        long,
        value_name = "TEXT",
        conflicts_with = "prompt",
        required_unless_present = "prompt"
    )]
    file: Option<PathBuf>,
    /// One string to tokenize instead of a file.
    #[arg(short, long)]
    prompt: Option<String>,
    /// Print a JSON array of arrays instead of one line of ids per input line.
    #[arg(long)]
    json: bool,
    /// No BOS (nor EOS, for models that append one): llama.cpp's add_special = false.
    #[arg(long)]
    no_bos: bool,
    /// The ids of the chat prompt `llq run --chat` evaluates: the prompt as a user turn in the
    /// model's chat template, special tokens parsed.
    #[arg(long, requires = "prompt")]
    chat: bool,
    /// With --chat: a system message first.
    #[arg(long, requires = "chat")]
    system: Option<String>,
}

pub fn run(a: TokenizeArgs) -> Result<()> {
    let gguf = llq_formats::gguf::GgufFile::open(&a.model)?;
    let tok = Tokenizer::from_gguf(&gguf)?;
    if a.chat {
        let mut turns: Vec<Message> = a.system.iter().map(|s| Message::new("system", s)).collect();
        turns.push(Message::new(
            "user",
            a.prompt.as_deref().unwrap_or_default(),
        ));
        let ids = chat::prompt_tokens(&tok, &turns).map_err(|m| Error::file(&a.model, m))?;
        return print_ids(&[ids], a.json);
    }
    let text = match (&a.prompt, &a.file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) => read_text(path)?,
        (None, None) => return Err(Error::Usage("give -f TEXT or -p PROMPT".into())),
    };
    // A prompt is one input; a file is its lines ("\n" or "\r\n" endings, as str::lines).
    let lines: Vec<&str> = match a.prompt {
        Some(_) => vec![text.as_str()],
        None => text.lines().collect(),
    };
    // BOS (and EOS) as the model's add_bos_token / add_eos_token say, unless --no-bos.
    let ids: Vec<Vec<u32>> = lines.iter().map(|l| tok.tokenize(l, !a.no_bos)).collect();
    print_ids(&ids, a.json)
}

/// One line of space-separated ids per entry, or one JSON array of arrays.
fn print_ids(ids: &[Vec<u32>], json: bool) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let write_err = |e| Error::io("<stdout>", "cannot write", e);
    if json {
        let s = serde_json::to_string(&ids).expect("ids serialize");
        writeln!(out, "{s}").map_err(write_err)?;
    } else {
        for line in ids {
            let strs: Vec<String> = line.iter().map(u32::to_string).collect();
            writeln!(out, "{}", strs.join(" ")).map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)
}
