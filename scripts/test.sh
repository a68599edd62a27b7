#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: sets up the Python references (.venv), points
# the tests at them and at the shared data folder, and runs every test of the workspace with
# LLQ_REQUIRE_REFERENCES=1, so a test whose reference is missing fails instead of skipping.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

"$root/scripts/setup-python.sh"
export LLQ_PYTHON="$root/.venv/bin/python"
# ggml's own quantizer, shipped inside llama-cpp-python, is the byte-exact oracle.
LLQ_GGML_LIB=$("$LLQ_PYTHON" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("llama_cpp"); print(pathlib.Path(s.origin).parent / "lib" / "libggml-base.so")')
export LLQ_GGML_LIB
export LLQ_SHARED="${LLQ_SHARED:-$(cd "$root/.." && pwd)/shared}"
export LLQ_REQUIRE_REFERENCES=1
for need in "$LLQ_GGML_LIB" "$LLQ_SHARED"; do
  if [ ! -e "$need" ]; then
    echo "test.sh: $need not found (LLQ_GGML_LIB / LLQ_SHARED): the tests that compare with it cannot run" >&2
    exit 1
  fi
done

cargo test --workspace --no-fail-fast "$@"
# Again on the portable scalar kernels, so the reference path stays correct on every machine
# (the first run used the SIMD kernels this CPU offers).
echo "== the suite again with LLQ_KERNELS=scalar =="
LLQ_KERNELS=scalar cargo test --workspace --no-fail-fast "$@"
