#!/usr/bin/env python3
"""The tokenizer keys llama.cpp's converter writes for a Hugging Face folder's special tokens,
flags and chat templates: gguf-py's SpecialVocab (the class convert_hf_to_gguf.py uses) run
on the folder and written through gguf-py's GGUFWriter, then read back.

Usage: special_vocab.py DIR N_VOCAB MERGES(0|1) SCRATCH.gguf
Prints JSON {key: value} of every key SpecialVocab wrote, merges left out (llq checks those
against tokenizer.json itself).
"""
import json
import sys
from pathlib import Path

from gguf import GGUFReader, GGUFWriter, SpecialVocab


def main():
    folder, n_vocab, merges, scratch = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
    vocab = SpecialVocab(folder, load_merges=merges, n_vocab=n_vocab)
    writer = GGUFWriter(scratch, "llama")
    vocab.add_to_gguf(writer, quiet=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    out = {}
    for field in GGUFReader(scratch).fields.values():
        if field.name.startswith("tokenizer.") and field.name != "tokenizer.ggml.merges":
            out[field.name] = field.contents()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
