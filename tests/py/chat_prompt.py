#!/usr/bin/env python3
"""A chat prompt as llama.cpp's tool chain builds it from a GGUF's own chat template, and the
end-of-generation tokens llama.cpp gives the file.

Usage: chat_prompt.py MODEL.gguf SYSTEM USER     (SYSTEM "" for none)
Prints JSON:
- "jinja": token ids of the template rendered by llama-cpp-python's Jinja2ChatFormatter
  (Python Jinja2, transformers' settings; what Llama.create_chat_completion uses), tokenized
  by llama.cpp with special tokens parsed, BOS added only if the rendering lacks it;
- "capi": ids of llama.cpp's own llama_chat_apply_template (its built-in formats, chosen by
  looking at the template), tokenized the same way with BOS added; null if it refuses;
- "eot": llama.cpp's end-of-turn id; "eog": every token that ends generation.
"""
import ctypes
import json
import sys

import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter


def main():
    path, system, user = sys.argv[1], sys.argv[2], sys.argv[3]
    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    text = lambda i: llm.detokenize([i], special=True).decode("utf-8")
    bos, eos = text(llm.token_bos()), text(llm.token_eos())
    template = llm.metadata["tokenizer.chat_template"]
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}]
    prompt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)(messages=messages).prompt
    jinja = llm.tokenize(prompt.encode(), add_bos=not prompt.startswith(bos), special=True)

    chat = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(role=m["role"].encode(), content=m["content"].encode())
          for m in messages])
    n = llama_cpp.llama_chat_apply_template(template.encode(), chat, len(messages), True, None, 0)
    capi = None
    if n >= 0:
        buf = ctypes.create_string_buffer(n + 1)
        llama_cpp.llama_chat_apply_template(template.encode(), chat, len(messages), True, buf, len(buf))
        capi = llm.tokenize(buf.raw[:n], add_bos=True, special=True)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    print(json.dumps({
        "jinja": jinja,
        "capi": capi,
        "eot": llama_cpp.llama_vocab_eot(vocab),
        "eog": [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)],
    }))


if __name__ == "__main__":
    main()
