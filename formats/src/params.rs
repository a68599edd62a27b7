//! `params.json` (Meta) and `config.json` (Hugging Face) into one set of hyperparameters.
//! STUB: to be implemented.
