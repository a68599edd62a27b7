#!/usr/bin/env bash
# --fit against llama-quantize's fixed mixes (issue 13): for each mix, the mix's file and two
# --fit files of exactly its size (one calibrated on text, one data-free on random tokens), all
# scored with `llq compare` against the F32 model on the held-out 10 % of the corpus
# (fixtures/README.md, "Corpus split"); calibration uses the training 90 %. Prints a markdown
# table and the wall time and peak RSS of each --fit conversion (from /usr/bin/time -v).
#
# Environment (all optional):
#   LLQ_BIN      llq binary (default: $CARGO_TARGET_DIR/release/llq, else target/release/llq)
#   SRC          source checkpoint (default: fixtures/tiny-llama/meta)
#   LLQ_SHARED   the shared data folder with corpus/wikitext-2-test.txt (default: ../shared)
#   BENCH_DIR    scratch dir (default: <repo>/bench-data/fit)
#   MIXES        the fixed types to match (default: "q3_k_m iq4_xs q4_k_m q5_k_m")
#   EVAL_CHUNKS  scored chunks of 512 tokens (default 40)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLQ_BIN=${LLQ_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/llq}
SRC=${SRC:-$REPO/fixtures/tiny-llama/meta}
LLQ_SHARED=${LLQ_SHARED:-$REPO/../shared}
BENCH_DIR=${BENCH_DIR:-$REPO/bench-data/fit}
MIXES=${MIXES:-q3_k_m iq4_xs q4_k_m q5_k_m}
EVAL_CHUNKS=${EVAL_CHUNKS:-40}

mkdir -p "$BENCH_DIR"
python3 - "$LLQ_SHARED/corpus/wikitext-2-test.txt" "$BENCH_DIR" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8", newline="").read()
cut = text.index("\n", len(text) * 9 // 10) + 1
open(f"{sys.argv[2]}/training.txt", "w", encoding="utf-8", newline="").write(text[:cut])
open(f"{sys.argv[2]}/heldout.txt", "w", encoding="utf-8", newline="").write(text[cut:])
PY
f32=$BENCH_DIR/f32.gguf
"$LLQ_BIN" convert "$SRC" -o "$f32" -t f32 --force --quiet 2>/dev/null

score() { # FILE -> "kld top1"
    "$LLQ_BIN" compare "$f32" "$1" -f "$BENCH_DIR/heldout.txt" --chunks "$EVAL_CHUNKS" --quiet \
        --json "$1.json" >/dev/null
    jq -r '"\(.kld_mean) \(.top1)"' "$1.json"
}

echo "source: $SRC; scored: $EVAL_CHUNKS chunks of 512 held-out tokens"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); llq $(git -C "$REPO" rev-parse --short HEAD)"
echo
echo "| size of | bytes | mix KLD | --fit KLD (text) | --fit KLD (random tokens) | top-1 mix / text / random |"
echo "|---|---:|---:|---:|---:|---|"
timings=()
for mix in $MIXES; do
    "$LLQ_BIN" convert "$SRC" -o "$BENCH_DIR/$mix.gguf" -t "$mix" --force --quiet 2>/dev/null
    size=$(stat -c %s "$BENCH_DIR/$mix.gguf")
    read -r k_mix t_mix <<<"$(score "$BENCH_DIR/$mix.gguf")"
    for how in text random; do
        out=$BENCH_DIR/fit-$how-$mix.gguf
        args=(convert "$SRC" -o "$out" --fit "$size" --force --quiet)
        [[ $how == text ]] && args+=(--calibration "$BENCH_DIR/training.txt")
        /usr/bin/time -v "$LLQ_BIN" "${args[@]}" >/dev/null 2>"$BENCH_DIR/time-$how-$mix.txt"
        wall=$(grep 'Elapsed (wall clock)' "$BENCH_DIR/time-$how-$mix.txt" | awk '{print $NF}')
        rss=$(grep 'Maximum resident' "$BENCH_DIR/time-$how-$mix.txt" | awk '{print $NF}')
        timings+=("$mix size, --fit ($how): $wall wall, peak RSS $((rss / 1024)) MiB")
    done
    read -r k_text t_text <<<"$(score "$BENCH_DIR/fit-text-$mix.gguf")"
    read -r k_rand t_rand <<<"$(score "$BENCH_DIR/fit-random-$mix.gguf")"
    python3 - "$mix" "$size" "$k_mix" "$k_text" "$k_rand" "$t_mix" "$t_text" "$t_rand" <<'PY'
import sys
mix, size, km, kt, kr, tm, tt, tr = sys.argv[1:]
km, kt, kr = float(km), float(kt), float(kr)
print(f"| {mix.upper()} | {int(size):,} | {km:.3e} | {kt:.3e} ({kt / km:.2f}×) | "
      f"{kr:.3e} ({kr / km:.2f}×) | {float(tm):.3f} / {float(tt):.3f} / {float(tr):.3f} |")
PY
done
echo
printf '%s\n' "${timings[@]}"
