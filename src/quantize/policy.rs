//! The target type of every tensor: a file type's default, llama-quantize's per-tensor mix rules
//! (more bits for output, attn_v and ffn_down on chosen layers), user overrides, and the fallback
//! when a row is not a whole number of blocks. Also what `llq plan` sizes come from.

use crate::error::{Error, Result};
use llq_formats::params::Hyperparams;
use llq_types::{FileType, GgmlType};

/// A user override: tensors whose GGUF name contains a match of `pattern` get `ty`.
#[derive(Clone, Debug)]
pub struct TypeOverride {
    pub pattern: regex::Regex,
    pub ty: GgmlType,
}

/// Whether weights may be stored as `ty`: the types with a dot product (activation-only
/// types such as Q8_1 and Q8_K cannot hold weights).
pub fn can_hold_weights(ty: GgmlType) -> bool {
    ty.activation().is_some()
}

/// Everything that decides tensor types.
#[derive(Clone, Debug)]
pub struct Policy {
    pub file_type: FileType,
    /// Every quantized tensor gets the base type (no mix rules).
    pub pure: bool,
    pub overrides: Vec<TypeOverride>,
    pub output_type: Option<GgmlType>,
    pub token_embedding_type: Option<GgmlType>,
    pub has_imatrix: bool,
}

impl Policy {
    pub fn new(file_type: FileType) -> Policy {
        Policy {
            file_type,
            pure: false,
            overrides: Vec::new(),
            output_type: None,
            token_embedding_type: None,
            has_imatrix: false,
        }
    }
}

/// The decided type of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorTarget {
    pub name: String,
    /// Row-major (torch) shape.
    pub shape: Vec<usize>,
    pub ty: GgmlType,
    /// Why the type differs from the one the rules chose, when a row did not fit its blocks.
    pub fallback: Option<String>,
}

impl TensorTarget {
    /// ggml order (`ne[0]` = row length), as GGUF stores shapes.
    pub fn ggml_dims(&self) -> Vec<u64> {
        self.shape.iter().rev().map(|&d| d as u64).collect()
    }

    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn n_bytes(&self) -> usize {
        let row = *self.shape.last().unwrap_or(&1);
        let rows = self.n_elements() / row.max(1);
        self.ty.row_bytes(row).unwrap_or(0) * rows
    }
}

/// Per-tensor types for a model's tensors, given in file order as (GGUF name, torch shape).
pub fn assign(
    hp: &Hyperparams,
    tensors: &[(String, Vec<usize>)],
    opts: &Policy,
) -> Result<Vec<TensorTarget>> {
    let mut mix = MixState {
        hp,
        ft: opts.file_type,
        has_imatrix: opts.has_imatrix,
        has_output: tensors.iter().any(|(n, _)| n == "output.weight"),
        n_attn_v: tensors
            .iter()
            .filter(|(n, _)| n.contains("attn_v.weight"))
            .count(),
        n_ffn_down: tensors
            .iter()
            .filter(|(n, _)| n.contains("ffn_down"))
            .count(),
        i_attn_v: 0,
        i_ffn_down: 0,
    };
    tensors
        .iter()
        .map(|(name, shape)| mix.target(name, shape, opts))
        .collect()
}

/// llama-quantize's walk over the tensors: counters of attn_v / ffn_down seen so far decide
/// which layers get more bits.
struct MixState<'a> {
    hp: &'a Hyperparams,
    ft: FileType,
    has_imatrix: bool,
    has_output: bool,
    n_attn_v: usize,
    n_ffn_down: usize,
    i_attn_v: usize,
    i_ffn_down: usize,
}

/// Layers that get more bits in the _M mixes: the first and last eighth, and every third between.
fn use_more_bits(i: usize, n: usize) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i as isize - (n / 8) as isize).rem_euclid(3) == 2
}

impl MixState<'_> {
    fn target(&mut self, name: &str, shape: &[usize], opts: &Policy) -> Result<TensorTarget> {
        let row = *shape.last().unwrap_or(&1);
        let target = |ty, fallback| TensorTarget {
            name: name.to_string(),
            shape: shape.to_vec(),
            ty,
            fallback,
        };
        // Norms and other 1-D tensors stay F32, as llama.cpp keeps them.
        if shape.len() < 2 || name.ends_with("_norm.weight") {
            return Ok(target(GgmlType::F32, None));
        }
        if name == "token_embd.weight" {
            if let Some(ty) = opts.token_embedding_type {
                return Ok(target(checked_fit(name, ty, row)?, None));
            }
        }
        if name == "output.weight" {
            if let Some(ty) = opts.output_type {
                return Ok(target(checked_fit(name, ty, row)?, None));
            }
        }
        let base = self.ft.base();
        if !base.is_quantized() {
            return Ok(target(base, None));
        }
        let manual = opts.overrides.iter().find(|o| o.pattern.is_match(name));
        let chosen = match manual {
            Some(o) => o.ty,
            None if opts.pure => base,
            None => self.mix_type(name, row, base),
        };
        Ok(match fallback(chosen, row) {
            Some((ty, reason)) => target(ty, Some(reason)),
            None => target(chosen, None),
        })
    }

    /// llama-quantize's mix rules for the LLaMA architecture (llama_tensor_get_type).
    fn mix_type(&mut self, name: &str, row: usize, base: GgmlType) -> GgmlType {
        use FileType as F;
        use GgmlType as T;
        let ft = self.ft;
        let is_output =
            name == "output.weight" || (!self.has_output && name == "token_embd.weight");
        if is_output {
            return if !row.is_multiple_of(base.block_size()) {
                T::Q8_0
            } else if base != T::Q8_0 {
                T::Q6_K
            } else {
                base
            };
        }
        let n_gqa = self.hp.n_head / self.hp.n_head_kv;
        if name.contains("attn_v.weight") {
            let i = self.i_attn_v;
            self.i_attn_v += 1;
            let mut ty = match ft {
                F::Q2_K => {
                    if n_gqa >= 4 {
                        T::Q4_K
                    } else {
                        T::Q3_K
                    }
                }
                F::Q3_K_M if i < 2 => T::Q5_K,
                F::Q3_K_M => T::Q4_K,
                F::Q3_K_L => T::Q5_K,
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i, self.n_attn_v) => T::Q6_K,
                F::Q4_K_S if i < 4 => T::Q5_K,
                F::IQ4_NL | F::IQ4_XS if n_gqa >= 4 => T::Q5_K,
                _ => base,
            };
            // LLaMA 2 70B (80 layers, GQA): attn_v is 8× smaller than attn_q; more bits are cheap.
            let is_70b = self.hp.n_layer == 80 && self.hp.n_head != self.hp.n_head_kv;
            if is_70b && matches!(ty, T::Q3_K | T::Q4_K) {
                ty = T::Q5_K;
            }
            return ty;
        }
        if name.contains("ffn_down") {
            let (i, n) = (self.i_ffn_down, self.n_ffn_down);
            self.i_ffn_down += 1;
            return match ft {
                F::Q2_K => T::Q3_K,
                F::Q3_K_M if i < n / 16 => T::Q5_K,
                F::Q3_K_M => T::Q4_K,
                F::Q3_K_L => T::Q5_K,
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i, n) => T::Q6_K,
                F::Q4_K_S if i < n / 8 => T::Q5_K,
                F::Q4_0 if self.has_imatrix && i < n / 8 => T::Q4_1,
                F::Q5_0 if self.has_imatrix && i < n / 8 => T::Q5_1,
                F::IQ4_NL | F::IQ4_XS if !self.has_imatrix && i < n / 8 => T::Q5_K,
                _ => base,
            };
        }
        if name.contains("attn_output.weight") {
            return match ft {
                F::Q2_K => T::Q3_K,
                F::Q3_K_M => T::Q4_K,
                F::Q3_K_L => T::Q5_K,
                _ => base,
            };
        }
        base
    }
}

/// llama-quantize's fallback for rows that are not a whole number of blocks: the nearest
/// 32-element type, or F16 if even that does not fit. As in llama.cpp 0c1e570 (the version the
/// tests pin): IQ4_XS falls back to IQ4_NL, Q2_K and Q3_K to Q4_0 (older llama.cpp sent those
/// two to IQ4_NL as well).
fn fallback(ty: GgmlType, row: usize) -> Option<(GgmlType, String)> {
    use GgmlType as T;
    if row.is_multiple_of(ty.block_size()) {
        return None;
    }
    let mut to = match ty {
        T::Q2_K | T::Q3_K => T::Q4_0,
        T::Q4_K => T::Q5_0,
        T::Q5_K => T::Q5_1,
        T::Q6_K => T::Q8_0,
        T::IQ4_XS => T::IQ4_NL,
        _ => T::F16,
    };
    if !row.is_multiple_of(to.block_size()) {
        to = T::F16;
    }
    let reason = format!(
        "row length {row} is not a multiple of {} (block of {ty}); {to} instead",
        ty.block_size()
    );
    Some((to, reason))
}

/// An explicitly requested type must fit the rows: no silent substitution for a user's choice.
fn checked_fit(name: &str, ty: GgmlType, row: usize) -> Result<GgmlType> {
    if row.is_multiple_of(ty.block_size()) {
        Ok(ty)
    } else {
        Err(Error::Usage(format!(
            "{name}: row length {row} is not a multiple of {ty}'s block of {}",
            ty.block_size()
        )))
    }
}

/// The layer-independent summary used in reports: (type, tensors, bytes, elements) per type.
pub fn summarize(targets: &[TensorTarget]) -> Vec<(GgmlType, usize, usize, usize)> {
    let mut rows: Vec<(GgmlType, usize, usize, usize)> = Vec::new();
    for p in targets {
        match rows.iter_mut().find(|r| r.0 == p.ty) {
            Some(r) => {
                r.1 += 1;
                r.2 += p.n_bytes();
                r.3 += p.n_elements();
            }
            None => rows.push((p.ty, 1, p.n_bytes(), p.n_elements())),
        }
    }
    rows.sort_by_key(|r| r.0);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::tensor_names::expected_tensors;

    fn hp(n_layer: usize, n_ff: usize) -> Hyperparams {
        Hyperparams {
            n_vocab: 512,
            n_embd: 256,
            n_layer,
            n_head: 8,
            n_head_kv: 4,
            n_ff,
            norm_eps: 1e-5,
            rope_theta: 1e4,
            context_length: 512,
            tied_embeddings: false,
        }
    }

    fn types_of(hp: &Hyperparams, opts: &Policy) -> Vec<(String, GgmlType)> {
        let tensors: Vec<_> = expected_tensors(hp)
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect();
        assign(hp, &tensors, opts)
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.ty))
            .collect()
    }

    fn ty(types: &[(String, GgmlType)], name: &str) -> GgmlType {
        types.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn q4_k_m_gives_more_bits_to_chosen_layers() {
        let hp = hp(32, 768);
        let t = types_of(&hp, &Policy::new(FileType::Q4_K_M));
        assert_eq!(ty(&t, "output.weight"), GgmlType::Q6_K);
        assert_eq!(ty(&t, "token_embd.weight"), GgmlType::Q4_K);
        assert_eq!(ty(&t, "output_norm.weight"), GgmlType::F32);
        // use_more_bits over 32 layers: 0..4, 28..32, and (i-4)%3 == 2 → 6, 9, 12, ...
        let more: Vec<usize> = (0..32)
            .filter(|i| ty(&t, &format!("blk.{i}.attn_v.weight")) == GgmlType::Q6_K)
            .collect();
        assert_eq!(
            more,
            vec![0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
        );
        assert_eq!(ty(&t, "blk.6.ffn_down.weight"), GgmlType::Q6_K);
        assert_eq!(ty(&t, "blk.7.ffn_down.weight"), GgmlType::Q4_K);
        assert_eq!(ty(&t, "blk.7.attn_q.weight"), GgmlType::Q4_K);
    }

    #[test]
    fn k_quant_rows_that_do_not_fit_fall_back() {
        let hp = hp(4, 416);
        let t = types_of(&hp, &Policy::new(FileType::Q4_K_M));
        // ffn_down rows are 416 long: Q6_K → Q8_0 on "more bits" layers (2 and 3 of 4),
        // Q4_K → Q5_0 elsewhere.
        assert_eq!(ty(&t, "blk.0.ffn_down.weight"), GgmlType::Q5_0);
        assert_eq!(ty(&t, "blk.2.ffn_down.weight"), GgmlType::Q8_0);
        assert_eq!(ty(&t, "blk.3.ffn_down.weight"), GgmlType::Q8_0);
        let t = types_of(&hp, &Policy::new(FileType::Q2_K));
        assert_eq!(ty(&t, "blk.1.ffn_down.weight"), GgmlType::Q4_0);
        assert_eq!(ty(&t, "blk.1.attn_v.weight"), GgmlType::Q3_K);
    }

    #[test]
    fn iq4_rules_follow_gqa_imatrix_and_rows() {
        // 16 layers, n_head 8 over n_head_kv 2 (GQA 4), ffn rows of 416: not whole 256-blocks.
        let gqa4 = Hyperparams {
            n_head_kv: 2,
            ..hp(16, 416)
        };
        for ft in [FileType::IQ4_XS, FileType::IQ4_NL] {
            let t = types_of(&gqa4, &Policy::new(ft));
            assert_eq!(ty(&t, "output.weight"), GgmlType::Q6_K, "{ft}");
            assert_eq!(ty(&t, "token_embd.weight"), ft.base(), "{ft}");
            assert_eq!(ty(&t, "blk.5.attn_v.weight"), GgmlType::Q5_K, "{ft}");
            assert_eq!(ty(&t, "blk.5.attn_q.weight"), ft.base(), "{ft}");
            // The first n_layer/8 ffn_down get Q5_K, whose rows do not fit: Q5_1.
            assert_eq!(ty(&t, "blk.1.ffn_down.weight"), GgmlType::Q5_1, "{ft}");
            assert_eq!(ty(&t, "blk.2.ffn_down.weight"), GgmlType::IQ4_NL, "{ft}");
            let with_imatrix = Policy {
                has_imatrix: true,
                ..Policy::new(ft)
            };
            let t = types_of(&gqa4, &with_imatrix);
            assert_eq!(ty(&t, "blk.0.ffn_down.weight"), GgmlType::IQ4_NL, "{ft}");
        }
        let t = types_of(&hp(4, 512), &Policy::new(FileType::IQ4_XS));
        assert_eq!(ty(&t, "blk.1.attn_v.weight"), GgmlType::IQ4_XS);
    }

    #[test]
    fn pure_overrides_and_float_types() {
        let hp = hp(4, 512);
        let mut opts = Policy::new(FileType::Q4_0);
        opts.pure = true;
        let t = types_of(&hp, &opts);
        assert_eq!(ty(&t, "output.weight"), GgmlType::Q4_0);
        opts.overrides = vec![TypeOverride {
            pattern: regex::Regex::new("attn_v").unwrap(),
            ty: GgmlType::Q8_0,
        }];
        opts.output_type = Some(GgmlType::F16);
        let t = types_of(&hp, &opts);
        assert_eq!(ty(&t, "blk.2.attn_v.weight"), GgmlType::Q8_0);
        assert_eq!(ty(&t, "output.weight"), GgmlType::F16);
        let t = types_of(&hp, &Policy::new(FileType::BF16));
        assert!(t
            .iter()
            .all(|(n, ty)| *ty == GgmlType::BF16 || n.ends_with("norm.weight")));
    }
}
