//! The K-quants (Q2_K ... Q6_K, Q8_K): against ggml (`oracle`), gguf-py's decoders (`dequant`)
//! and error bounds of their own (`roundtrip`). The oracle is `crate::ggml_oracle`.

mod dequant;
mod oracle;
mod roundtrip;

use llq_types::{Family, GgmlType};

/// The K-quants: every type of 256-element super-blocks (Q8_K included).
fn types() -> impl Iterator<Item = GgmlType> {
    GgmlType::all().filter(|ty| ty.family() == Family::KQuant)
}

/// The K-quant weight types (Q8_K only holds activations, and importance does not apply to it).
fn weight_types() -> impl Iterator<Item = GgmlType> {
    types().filter(|ty| ty.activation().is_some())
}
