"""Token ids of every line of a text file from tiktoken with a Llama 3 tokenizer.model, as JSON.

Usage: tiktoken_encode.py TOKENIZER_MODEL TEXT [--no-bos]

Lines are split as Rust's `str::lines` does (see spm_encode.py). Each line is encoded on its
own with Meta's Llama 3 pre-split pattern and no special tokens (`encode_ordinary`), with
BOS (128000 for the real vocabulary: the first id after the ranks) first unless --no-bos.
Prints {"ids": [[id, ...] per line], "decoded": [text per line]}.
"""

import json
import sys

import tiktoken
from tiktoken.load import load_tiktoken_bpe

from spm_encode import read_lines

PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def main():
    args = [a for a in sys.argv[1:] if a != "--no-bos"]
    bos = "--no-bos" not in sys.argv[1:]
    ranks = load_tiktoken_bpe(args[0])
    enc = tiktoken.Encoding(name="llama3", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
    bos_id = len(ranks)
    ids, decoded = [], []
    for line in read_lines(args[1]):
        t = enc.encode_ordinary(line)
        decoded.append(enc.decode(t))
        ids.append(([bos_id] if bos else []) + t)
    json.dump({"ids": ids, "decoded": decoded}, sys.stdout)


if __name__ == "__main__":
    main()
