//! GGUF v3: typed metadata values, a memory-mapped reader and a streaming writer.

mod reader;
mod value;
mod writer;

pub use reader::{GgufFile, TensorInfo};
pub use value::{Array, Value, ValueType};
pub use writer::{layout, GgufWriter, Layout, TensorSpec};

/// Default and most common data alignment.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// llama.cpp's limit on tensor name length in bytes.
pub const MAX_NAME_LEN: usize = 63;
