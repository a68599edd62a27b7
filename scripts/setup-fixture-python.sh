#!/usr/bin/env bash
# Make the venv the fixture generators run in (torch, transformers, sentencepiece, tiktoken):
# LLQ_FIXTURE_VENV, default .venv-fixtures in the repository. Idempotent like setup-python.sh.
# Not needed by the tests: the fixtures are committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${LLQ_FIXTURE_VENV:-$root/.venv-fixtures}"
req="$root/fixtures/gen/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
python3 -m venv --clear "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q -r "$req"
echo "$want" > "$stamp"
echo "$venv/bin/python"
