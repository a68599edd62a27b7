//! What several test modules share: the type lists, scratch files for the oracles, and
//! conversions of their inputs and outputs.

use llq_kernels::dot;
use llq_types::GgmlType;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every type with a dot product (the weight types), from the scalar table.
pub fn weight_types() -> impl Iterator<Item = GgmlType> {
    GgmlType::all().filter(|&ty| dot::scalar_table().kernel(ty).is_some())
}

/// A scratch directory, unique per process and call, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("llq-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// The path as an argument for a script.
    pub fn arg(&self, file: &str) -> String {
        self.path(file)
            .to_str()
            .expect("utf-8 temp path")
            .to_string()
    }

    pub fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    pub fn read_f32(&self, file: &str) -> Vec<f32> {
        f32_from_bytes(&self.read(file))
    }

    pub fn write(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.path(file), bytes).unwrap();
    }

    pub fn write_f32(&self, file: &str, values: &[f32]) {
        self.write(file, &f32_bytes(values));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn f32_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Equal bits, or both NaN.
pub fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Fail with every mismatch found, if any.
pub fn report(bad: Vec<String>) {
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
