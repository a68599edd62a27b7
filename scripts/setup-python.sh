#!/usr/bin/env bash
# Make .venv with the Python references the tests compare against (gguf, sentencepiece,
# llama-cpp-python, ...). Idempotent: a venv whose requirements and build flags are already met
# is reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
req="$root/scripts/requirements-test.txt"
# llama-cpp-python builds llama.cpp from source (several minutes on 2 cores), CPU only. It is
# built for a fixed x86-64 level (AVX2, FMA, F16C), not -march=native: the reference then gives
# the same numbers on every CI machine, and no code path the machine's kernel does not enable
# (AMX tiles, which segfault in llama.cpp when the kernel refuses them) is ever taken.
cmake_args="-DLLAMA_CURL=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
stamp="$venv/.requirements.sha256"
want=$( (cat "$req"; echo "$cmake_args") | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# A venv made for other requirements or flags is made again from scratch.
python3 -m venv --clear "$venv"
"$venv/bin/pip" install -q --upgrade pip
# --no-cache-dir: a wheel cached from a build with other flags must not be reused.
CMAKE_ARGS="$cmake_args" "$venv/bin/pip" install -q --no-cache-dir -r "$req"
echo "$want" > "$stamp"
