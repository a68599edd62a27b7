"""Token ids of every line of a text file, from a reference tokenizer, as JSON.

Usage:
  spm_encode.py spm   TOKENIZER_MODEL TEXT [--no-bos] [--whole]   (the `sentencepiece` library)
  spm_encode.py llama MODEL_GGUF      TEXT [--no-bos] [--whole]   (llama.cpp, llama-cpp-python)

Prints {"ids": [[id, ...] per line], "decoded": [text per line]}. Lines are split as Rust's
`str::lines` does (on "\\n", one "\\r" before it removed, no empty last line after a final
"\\n"), so the line numbers are the same as llq's; --whole takes the whole file as one
line. Each line is encoded on its own, with BOS first unless --no-bos:
  sentencepiece: SentencePieceProcessor.encode(line, add_bos=...); "decoded" is decode(ids).
  llama.cpp:     Llama(vocab_only=True).tokenize(line.encode(), add_bos=..., special=False),
                 i.e. llama_tokenize(add_special, parse_special=false); "decoded" is
                 detokenize(ids) (raw piece bytes, read as UTF-8 with errors replaced).
"""

import json
import sys


def read_lines(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    parts = text.split("\n")
    ended = parts[-1] == ""
    if ended:
        parts.pop()
    lines = []
    for i, line in enumerate(parts):
        # Only a "\r" that ended a line (before a "\n") is removed, as str::lines does.
        terminated = i < len(parts) - 1 or ended
        if terminated and line.endswith("\r"):
            line = line[:-1]
        lines.append(line)
    return lines


def main():
    flags = {"--no-bos", "--whole"}
    args = [a for a in sys.argv[1:] if a not in flags]
    add_bos = "--no-bos" not in sys.argv[1:]
    backend, model, text_path = args
    if "--whole" in sys.argv[1:]:
        with open(text_path, "rb") as f:
            lines = [f.read().decode("utf-8")]
    else:
        lines = read_lines(text_path)
    if backend == "spm":
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=model)
        ids = sp.encode(lines, add_bos=add_bos)
        decoded = sp.decode(ids)
    elif backend == "llama":
        import llama_cpp

        llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
        ids = [llm.tokenize(line.encode("utf-8"), add_bos=add_bos, special=False) for line in lines]
        decoded = [llm.detokenize(t).decode("utf-8", errors="replace") for t in ids]
    else:
        sys.exit(f"unknown backend {backend!r} (spm or llama)")
    json.dump({"ids": ids, "decoded": decoded}, sys.stdout)


if __name__ == "__main__":
    main()
