//! The crate's one error type: which file, and what is wrong with it.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{}: {msg}", path.display())]
pub struct Error {
    pub path: PathBuf,
    pub msg: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }

    /// An I/O error while doing `what` with `path`.
    pub fn io(path: impl AsRef<Path>, what: &str, err: std::io::Error) -> Self {
        Error::new(path, format!("{what}: {err}"))
    }
}

/// Attach a path to a byte-level parse error (parsers below report plain strings).
pub trait WithPath<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> WithPath<T> for std::result::Result<T, String> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|msg| Error::new(path, msg))
    }
}
