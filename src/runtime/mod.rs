//! The reference runtime: load a GGUF, evaluate it, generate text.

pub mod bench;
pub mod bpe;
pub mod forward;
pub mod generate;
pub mod model;
pub mod ops;
pub mod sampler;
pub mod tokenizer;

/// Runs `f` on a thread of rayon's pool. A forward pass makes a few hundred small parallel
/// calls per generated token. Made from outside the pool, each call hands its work to the pool
/// and sleeps until woken again (about 12 µs a call on 2 cores, measured). Made from a pool
/// thread, the caller starts on its own share at once.
pub fn on_workers<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}
