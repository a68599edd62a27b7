//! torch `.pth` files (zip + pickle). STUB: to be implemented.

use crate::error::Result;
use crate::tensor::MappedTensors;
use std::path::Path;

pub fn open(path: &Path) -> Result<MappedTensors> {
    let _ = path;
    todo!()
}
