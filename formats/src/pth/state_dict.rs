//! From the unpickled root object to an ordered list of named tensors.

use super::pickle::Value;
use super::torch::TensorRef;
use std::collections::HashSet;

/// Keys under which training scripts commonly nest the weights (`{"model": {...}, "epoch": 3}`).
const WRAPPER_KEYS: [&str; 2] = ["state_dict", "model"];

/// The tensors of a state dict in file order. Meta checkpoints are a flat dict; one level of
/// "state_dict"/"model" wrapping is unwrapped, and its sibling entries are ignored.
pub fn tensors(root: Value) -> Result<Vec<(String, TensorRef)>, String> {
    let Value::Dict(mut entries) = root else {
        return Err(format!(
            "checkpoint holds {}, not a dict of tensors",
            root.kind()
        ));
    };
    let is_wrapper = |(k, v): &(Value, Value)| matches!((k, v), (Value::Str(k), Value::Dict(_)) if WRAPPER_KEYS.contains(&k.as_str()));
    if let Some(i) = entries.iter().position(is_wrapper) {
        if entries[i + 1..].iter().any(is_wrapper) {
            return Err(
                "checkpoint has both \"state_dict\" and \"model\"; which one holds the \
                        weights is ambiguous"
                    .into(),
            );
        }
        if let (_, Value::Dict(inner)) = entries.swap_remove(i) {
            entries = inner;
        }
    }
    let mut seen = HashSet::new();
    entries
        .into_iter()
        .map(|(key, value)| {
            let Value::Str(name) = key else {
                return Err(format!("state dict key is {}, not a string", key.kind()));
            };
            let Value::Tensor(t) = value else {
                return Err(format!(
                    "state dict entry {name:?} is {}, not a tensor",
                    value.kind()
                ));
            };
            if !seen.insert(name.clone()) {
                return Err(format!("tensor {name:?} appears twice"));
            }
            Ok((name, t))
        })
        .collect()
}
