//! The application's error: every message names the file or the tensor at fault.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Format(#[from] llq_formats::Error),
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// A request that cannot be carried out as asked (exit code 2, like a usage error).
    #[error("{0}")]
    Usage(String),
    /// `llq compare` measured a quality gate as failed (exit code 1).
    #[error("{}: gate failed: {reason}", quant.display())]
    GateFailed { quant: PathBuf, reason: String },
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn file(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }

    pub fn io(path: impl AsRef<Path>, what: &str, err: std::io::Error) -> Self {
        Error::file(path, format!("{what}: {err}"))
    }
}
