//! A stable-Rust fuzz harness (cargo-fuzz needs nightly): one target per parser, each driven by
//! a small deterministic mutator over seed inputs (fixture files and small generated files).
//!
//! Every mutated input is parsed under `catch_unwind`; a panic, an allocation out of proportion
//! to the input, or a parsed result that points outside the input fails the test after writing
//! the input to a file whose path is printed. Crashers found this way are kept in
//! `tests/data/fuzz/<target>/` and replayed by `fuzz_regressions`.
//!
//! Time per target: `LLQ_FUZZ_SECONDS` (default 2), the seed `LLQ_FUZZ_SEED` (default 1).
//! `LLQ_FUZZ_SECONDS=600 cargo test -p llq-formats --test fuzz -- --test-threads 2` is a long
//! local run.

use llq_formats::gguf::{self, Array, GgufWriter, TensorSpec, Value};
use llq_formats::imatrix::{Imatrix, LegacyImatrix};
use llq_formats::params::{HfConfig, MetaParams};
use llq_formats::{pth, safetensors, sentencepiece, tiktoken, tokenizer_config, tokenizer_json};
use llq_types::GgmlType;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

// ---- allocation accounting: peak live bytes on the current thread while a target runs ----

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Run `f` and return the peak bytes it had allocated at once (on this thread).
fn peak_of(f: impl FnOnce()) -> usize {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    f();
    (PEAK.with(|p| p.get()) - base).max(0) as usize
}

/// Allowed parse memory: linear in the input (parsed values such as a GGUF u8 array take more
/// room than their bytes) plus a constant.
fn memory_bound(input_len: usize) -> usize {
    64 * input_len + (4 << 20)
}

// ---- deterministic mutator ----

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING_BYTES: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0xff, b'"', b'{', 0x0a];
const INTERESTING_WORDS: [u64; 12] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    1 << 60,
    u64::MAX,
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    let n_ops = 1 + rng.below(4);
    for _ in 0..n_ops {
        let len = input.len();
        match rng.below(10) {
            0 | 1 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
            }
            3 if len > 0 => {
                // A length field tweak: overwrite a little-endian word (2, 4 or 8 bytes) with an
                // interesting value, or add a small delta to what is there.
                let width = [2, 4, 8][rng.below(3)];
                let i = rng.below(len);
                let w = width.min(len - i);
                let mut old = [0u8; 8];
                old[..w].copy_from_slice(&input[i..i + w]);
                let v = match rng.below(3) {
                    0 => u64::from_le_bytes(old).wrapping_add(1 + rng.below(16) as u64),
                    1 => u64::from_le_bytes(old).wrapping_sub(1 + rng.below(16) as u64),
                    _ => INTERESTING_WORDS[rng.below(INTERESTING_WORDS.len())],
                };
                input[i..i + w].copy_from_slice(&v.to_le_bytes()[..w]);
            }
            4 if len > 0 => {
                // Delete a chunk.
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                input.drain(i..i + n);
            }
            5 if len > 0 => {
                // Duplicate a chunk in place.
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk: Vec<u8> = input[i..i + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            8 if !seeds.is_empty() => {
                // Splice: a piece of another seed over part of this one.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() && len > 0 {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below((other.len() - i).min(256));
                    let at = rng.below(len);
                    let end = (at + n).min(len);
                    input.splice(at..end, other[i..i + n].iter().copied());
                }
            }
            _ if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            _ => input.push(rng.next() as u8),
        }
    }
}

// ---- targets ----

/// A target parses one input and returns Err(description) if the result breaks an invariant
/// (a parse error is fine: the point is no panic and no wild allocation).
type Target = fn(&[u8]) -> Result<(), String>;

fn within(len: usize, range: &std::ops::Range<usize>, what: &str) -> Result<(), String> {
    if range.start <= range.end && range.end <= len {
        Ok(())
    } else {
        Err(format!(
            "{what}: range {range:?} outside the {len}-byte input"
        ))
    }
}

fn target_gguf(bytes: &[u8]) -> Result<(), String> {
    let Ok(h) = gguf::parse(bytes) else {
        return Ok(());
    };
    for t in &h.tensors {
        let n = t.n_bytes();
        if n == 0 {
            continue;
        }
        let end = h
            .data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(n));
        if end.is_none_or(|e| e > bytes.len() as u64) {
            return Err(format!("tensor {:?} lies outside the file", t.name));
        }
    }
    Ok(())
}

fn target_safetensors(bytes: &[u8]) -> Result<(), String> {
    let Ok(tensors) = safetensors::parse(bytes) else {
        return Ok(());
    };
    for t in &tensors {
        within(bytes.len(), &t.range, &t.name)?;
        let want = t
            .shape
            .iter()
            .try_fold(t.dtype.size(), |a, &d| a.checked_mul(d));
        if want != Some(t.range.len()) {
            return Err(format!("{}: range length disagrees with the shape", t.name));
        }
    }
    Ok(())
}

fn target_safetensors_index(bytes: &[u8]) -> Result<(), String> {
    let _ = safetensors::parse_index(bytes);
    Ok(())
}

fn target_pth(bytes: &[u8]) -> Result<(), String> {
    let Ok(tensors) = pth::parse(bytes) else {
        return Ok(());
    };
    for t in &tensors {
        within(bytes.len(), &t.range, &t.name)?;
    }
    Ok(())
}

fn target_spm(bytes: &[u8]) -> Result<(), String> {
    let _ = sentencepiece::parse(bytes);
    Ok(())
}

fn target_params(bytes: &[u8]) -> Result<(), String> {
    if let Ok(p) = serde_json::from_slice::<MetaParams>(bytes) {
        for (vocab, ffn) in [(32000, 11008), (0, 0), (usize::MAX, usize::MAX), (7, 1)] {
            if let Ok(h) = p.to_hyperparams(vocab, ffn) {
                let _ = h.validate();
            }
        }
        let _ = p.ffn_size();
    }
    if let Ok(c) = serde_json::from_slice::<HfConfig>(bytes) {
        if let Ok(h) = c.to_hyperparams() {
            let _ = h.validate();
        }
    }
    Ok(())
}

fn target_tiktoken(bytes: &[u8]) -> Result<(), String> {
    let _ = tiktoken::parse(bytes);
    Ok(())
}

fn target_tokenizer_json(bytes: &[u8]) -> Result<(), String> {
    let _ = tokenizer_json::parse(bytes);
    let _ = tokenizer_config::parse(bytes);
    let _ = tokenizer_config::config_token_ids(bytes);
    Ok(())
}

fn target_imatrix(bytes: &[u8]) -> Result<(), String> {
    let _ = LegacyImatrix::parse(bytes);
    let _ = Imatrix::parse(bytes);
    Ok(())
}

// ---- seeds ----

fn repo() -> PathBuf {
    llq_testsupport::workspace_root()
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn small_gguf(with_tensors: bool) -> Vec<u8> {
    let metadata = vec![
        (
            "general.architecture".to_string(),
            Value::String("llama".into()),
        ),
        ("llama.block_count".to_string(), Value::U32(2)),
        ("f".to_string(), Value::F32(1e-5)),
        ("i64".to_string(), Value::I64(-3)),
        (
            "tokenizer.ggml.tokens".to_string(),
            Value::Array(Array::String(vec!["<s>".into(), "▁a".into()])),
        ),
        (
            "tokenizer.ggml.scores".to_string(),
            Value::Array(Array::F32(vec![0.0, -1.0])),
        ),
    ];
    let tensors = if with_tensors {
        vec![
            TensorSpec {
                name: "a".into(),
                dims: vec![4, 2],
                ty: GgmlType::F32,
            },
            TensorSpec {
                name: "blk.0.q".into(),
                dims: vec![32, 1],
                ty: GgmlType::Q8_0,
            },
            TensorSpec {
                name: "e".into(),
                dims: vec![3],
                ty: GgmlType::F16,
            },
        ]
    } else {
        Vec::new()
    };
    let mut w = GgufWriter::new(Vec::new(), &metadata, &tensors).unwrap();
    let total: usize = [32, 34, 6][..tensors.len()].iter().sum();
    w.write_tensor_data(&(0..total).map(|i| i as u8).collect::<Vec<_>>())
        .unwrap();
    w.finish().unwrap()
}

fn small_safetensors() -> Vec<u8> {
    let header = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"c":{"dtype":"F16","shape":[0],"data_offsets":[22,22]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend((0..22u8).collect::<Vec<_>>());
    out
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let tiny = "fixtures/tiny-llama";
    match target {
        "gguf" => vec![small_gguf(true), small_gguf(false)],
        "safetensors" => {
            // The fixture shard's header and its first bytes of data: mutations land in the
            // header rather than in megabytes of weights.
            let shard = read(&format!("{tiny}/hf/model-00002-of-00002.safetensors"));
            let n = u64::from_le_bytes(shard[..8].try_into().unwrap()) as usize;
            vec![
                small_safetensors(),
                shard[..(8 + n + 64).min(shard.len())].to_vec(),
            ]
        }
        "safetensors_index" => vec![read(&format!("{tiny}/hf/model.safetensors.index.json"))],
        "pth" => [
            "dtypes",
            "module",
            "noncontig",
            "proto4",
            "shared",
            "legacy",
        ]
        .iter()
        .map(|n| read(&format!("formats/tests/data/pth/{n}.pth")))
        .collect(),
        "spm" => vec![read(&format!("{tiny}/meta/tokenizer.model"))],
        "params" => vec![
            read(&format!("{tiny}/meta/params.json")),
            read(&format!("{tiny}/hf/config.json")),
        ],
        "tiktoken" => vec![read("fixtures/tiny-llama3/meta/tokenizer.model")],
        "tokenizer_json" => ["tokenizer.json", "tokenizer_config.json", "config.json"]
            .iter()
            .map(|f| read(&format!("fixtures/tiny-llama3/hf/{f}")))
            .collect(),
        "imatrix" => {
            let legacy = LegacyImatrix {
                entries: vec![llq_formats::imatrix::LegacyEntry {
                    name: "blk.0.attn_q.weight".into(),
                    ncall: 2,
                    sums: vec![1.0, 2.0, 0.5, 4.0],
                }],
                trailer: Some((10, "wiki.txt".into())),
            };
            vec![legacy.to_bytes(), small_gguf(false)]
        }
        _ => unreachable!(),
    }
}

fn target_fn(name: &str) -> Target {
    match name {
        "gguf" => target_gguf,
        "safetensors" => target_safetensors,
        "safetensors_index" => target_safetensors_index,
        "pth" => target_pth,
        "spm" => target_spm,
        "params" => target_params,
        "tiktoken" => target_tiktoken,
        "tokenizer_json" => target_tokenizer_json,
        "imatrix" => target_imatrix,
        _ => unreachable!(),
    }
}

// ---- driver ----

thread_local! {
    static IN_TARGET: Cell<bool> = const { Cell::new(false) };
}

/// Panics inside a target are caught and reported with their input; keep the default hook's
/// message for every other panic (a failing assertion of the harness itself).
fn quiet_panics_in_targets() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_TARGET.with(|t| t.get()) {
                default(info);
            }
        }));
    });
}

/// Run one input; on failure, save it and describe the failure.
fn check_one(name: &str, f: Target, input: &[u8]) -> Result<(), String> {
    quiet_panics_in_targets();
    let mut verdict = Ok(());
    let peak = peak_of(|| {
        IN_TARGET.with(|t| t.set(true));
        let caught = std::panic::catch_unwind(|| f(input));
        IN_TARGET.with(|t| t.set(false));
        verdict = match caught {
            Ok(r) => r,
            Err(e) => Err(format!(
                "panic: {}",
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        };
    });
    if verdict.is_ok() && peak > memory_bound(input.len()) {
        verdict = Err(format!(
            "allocated {peak} bytes for a {}-byte input",
            input.len()
        ));
    }
    verdict.map_err(|why| {
        let dir = std::env::temp_dir().join("llq-fuzz-crashers");
        std::fs::create_dir_all(&dir).unwrap();
        let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let path = dir.join(format!("{name}-{hash:016x}"));
        std::fs::write(&path, input).unwrap();
        format!("{name}: {why}; input saved to {}", path.display())
    })
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fuzz(name: &str) {
    let seconds = env_u64("LLQ_FUZZ_SECONDS", 2);
    let f = target_fn(name);
    let seeds = seeds(name);
    for s in &seeds {
        if let Err(e) = check_one(name, f, s) {
            panic!("seed: {e}");
        }
    }
    let mut rng = Rng((env_u64("LLQ_FUZZ_SEED", 1)
        ^ (name.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0u64;
    let mut failures = Vec::new();
    while Instant::now() < deadline {
        for _ in 0..64 {
            let mut input = seeds[rng.below(seeds.len())].clone();
            // Stack several rounds now and then to get further from the seed.
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &seeds, &mut input);
            }
            runs += 1;
            if let Err(e) = check_one(name, f, &input) {
                failures.push(e);
                if failures.len() >= 5 {
                    break;
                }
            }
        }
        if failures.len() >= 5 {
            break;
        }
    }
    eprintln!("fuzz {name}: {runs} inputs in {seconds} s");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fuzz_gguf() {
    fuzz("gguf");
}

#[test]
fn fuzz_safetensors() {
    fuzz("safetensors");
}

#[test]
fn fuzz_safetensors_index() {
    fuzz("safetensors_index");
}

#[test]
fn fuzz_pth() {
    fuzz("pth");
}

#[test]
fn fuzz_spm() {
    fuzz("spm");
}

#[test]
fn fuzz_params() {
    fuzz("params");
}

#[test]
fn fuzz_tiktoken() {
    fuzz("tiktoken");
}

#[test]
fn fuzz_tokenizer_json() {
    fuzz("tokenizer_json");
}

#[test]
fn fuzz_imatrix() {
    fuzz("imatrix");
}
