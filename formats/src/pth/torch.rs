//! The few Python callables a torch state dict pickle may name, and what "calling" them means
//! for a data parser: building a description of a tensor, never running anything.
//!
//! A pickle GLOBAL can name any importable callable (`os.system`, `builtins.eval`, ...), which
//! is how malicious checkpoints execute code under `torch.load`. Only the names below are
//! accepted; everything else is refused when the GLOBAL is read, before any REDUCE could call it.

use super::pickle::Value;
use crate::tensor::DType;

/// An allow-listed global.
#[derive(Clone, Debug, PartialEq)]
pub enum Global {
    /// `collections.OrderedDict`: the state dict itself and every tensor's `backward_hooks`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
    RebuildTensorV2,
    /// `torch._utils._rebuild_parameter(tensor, requires_grad, hooks)`: an `nn.Parameter`.
    RebuildParameter,
    /// A typed storage class such as `torch.BFloat16Storage`, named in persistent ids.
    Storage(DType),
}

/// A storage: the zip entry `<prefix>/data/<key>` holding `numel` elements of `dtype`.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    pub dtype: DType,
    pub key: String,
    pub numel: u64,
}

/// A tensor view of a storage, in elements.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

/// Resolve `module.name` against the allow-list.
pub fn global(module: &str, name: &str) -> Result<Global, String> {
    let storage = |dtype| Ok(Global::Storage(dtype));
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", "DoubleStorage") => storage(DType::F64),
        ("torch", "FloatStorage") => storage(DType::F32),
        ("torch", "HalfStorage") => storage(DType::F16),
        ("torch", "BFloat16Storage") => storage(DType::BF16),
        ("torch", "LongStorage") => storage(DType::I64),
        ("torch", "IntStorage") => storage(DType::I32),
        ("torch", "ShortStorage") => storage(DType::I16),
        ("torch", "CharStorage") => storage(DType::I8),
        ("torch", "ByteStorage") => storage(DType::U8),
        ("torch", "BoolStorage") => storage(DType::Bool),
        _ => Err(format!(
            "refusing pickle global {module}.{name} (not in the allow-list)"
        )),
    }
}

/// REDUCE: apply an allow-listed callable to its argument tuple.
pub fn call(callable: &Global, args: Vec<Value>) -> Result<Value, String> {
    match callable {
        Global::OrderedDict => new_object(callable, args),
        Global::RebuildTensorV2 => rebuild_tensor(args),
        Global::RebuildParameter => match <[Value; 3]>::try_from(args) {
            Ok([tensor @ Value::Tensor(_), _requires_grad, _hooks]) => Ok(tensor),
            _ => Err("_rebuild_parameter expects (tensor, requires_grad, hooks)".into()),
        },
        Global::Storage(dtype) => Err(format!(
            "pickle calls storage class {}Storage; storages come only from persistent ids",
            dtype.name()
        )),
    }
}

/// NEWOBJ: `cls.__new__(cls, *args)`. Only an empty OrderedDict makes sense here.
pub fn new_object(class: &Global, args: Vec<Value>) -> Result<Value, String> {
    match (class, args.is_empty()) {
        (Global::OrderedDict, true) => Ok(Value::Dict(Vec::new())),
        (Global::OrderedDict, false) => {
            Err("OrderedDict built from arguments is not supported".into())
        }
        _ => Err(format!(
            "pickle instantiates {class:?}, which is not an allowed class"
        )),
    }
}

/// BINPERSID: torch's id `('storage', <storage class>, key, location, numel)`.
pub fn persistent_load(pid: Value) -> Result<Value, String> {
    let bad = || {
        "unsupported persistent id: expected ('storage', class, key, location, numel)".to_string()
    };
    let Value::Tuple(fields) = &pid else {
        return Err(bad());
    };
    match fields.as_slice() {
        [Value::Str(kind), Value::Global(Global::Storage(dtype)), Value::Str(key), Value::Str(_location), Value::Int(numel)]
            if kind == "storage" =>
        {
            Ok(Value::Storage(StorageRef {
                dtype: *dtype,
                key: key.clone(),
                numel: non_negative(*numel, "storage size")?,
            }))
        }
        _ => Err(bad()),
    }
}

/// `_rebuild_tensor_v2`: only the storage, offset, size and stride matter; requires_grad,
/// backward hooks and metadata do not change the bytes.
fn rebuild_tensor(args: Vec<Value>) -> Result<Value, String> {
    let mut args = args.into_iter();
    match (args.next(), args.next(), args.next(), args.next(), args.len()) {
        (Some(Value::Storage(storage)), Some(Value::Int(offset)), Some(size), Some(stride), 2 | 3) => {
            Ok(Value::Tensor(TensorRef {
                storage,
                offset: non_negative(offset, "storage offset")?,
                shape: ints(size, "size")?,
                stride: ints(stride, "stride")?,
            }))
        }
        _ => Err("_rebuild_tensor_v2 expects (storage, offset, size, stride, requires_grad, hooks[, metadata])".into()),
    }
}

fn ints(v: Value, what: &str) -> Result<Vec<u64>, String> {
    match v {
        Value::Tuple(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Int(i) => non_negative(i, what),
                other => Err(format!(
                    "tensor {what} holds {}, not an integer",
                    other.kind()
                )),
            })
            .collect(),
        other => Err(format!("tensor {what} is {}, not a tuple", other.kind())),
    }
}

fn non_negative(i: i64, what: &str) -> Result<u64, String> {
    u64::try_from(i).map_err(|_| format!("negative {what} {i}"))
}
