#!/usr/bin/env bash
# Make .venv with the Python references the tests compare against (gguf, sentencepiece,
# llama-cpp-python, ...). Idempotent: a venv whose requirements are already met is reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
req="$root/scripts/requirements-test.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
# llama-cpp-python builds llama.cpp from source (several minutes on 2 cores); CPU only.
CMAKE_ARGS="-DLLAMA_CURL=OFF" "$venv/bin/pip" install -q -r "$req"
echo "$want" > "$stamp"
