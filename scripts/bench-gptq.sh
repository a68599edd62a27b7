#!/usr/bin/env bash
# --quant-mode gptq against ggml's rounding (issue 14): for each type, four files of the same
# size from one F32 reference, scored with `llq compare` on text the calibration never saw:
#   rtn       llama-quantize's rounding, no imatrix
#   ggml      llama-quantize's rounding with the imatrix of the calibration text
#   unbiased  --quant-mode unbiased with that imatrix
#   gptq      --quant-mode gptq over the calibration text, with that imatrix
# Texts: the corpus' training 90 % (fixtures/README.md, "Corpus split") cut at its middle; the
# imatrix and GPTQ's calibration come from the first half, the scores from the second.
# Prints a markdown table (bytes, mean KLD, top-1 agreement, PPL ratio) and the wall time and
# peak RSS of each gptq conversion (from /usr/bin/time -v).
#
# Environment (all optional):
#   LLQ_BIN        llq binary (default: $CARGO_TARGET_DIR/release/llq, else target/release/llq)
#   SRC            source checkpoint (default: fixtures/tiny-llama/meta)
#   LLQ_SHARED     the shared data folder with corpus/wikitext-2-test.txt (default: ../shared)
#   BENCH_DIR      scratch dir (default: <repo>/bench-data/gptq)
#   TYPES          file types (default: "q4_0 q4_k_m q3_k_m q2_k q8_0")
#   CAL_CHUNKS     calibration chunks of 512 tokens (default 32)
#   EVAL_CHUNKS    scored chunks of 512 tokens (default 30)
#   GPTQ_INPUTS    quantized|reference (default quantized)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLQ_BIN=${LLQ_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/llq}
SRC=${SRC:-$REPO/fixtures/tiny-llama/meta}
LLQ_SHARED=${LLQ_SHARED:-$REPO/../shared}
BENCH_DIR=${BENCH_DIR:-$REPO/bench-data/gptq}
TYPES=${TYPES:-q4_0 q4_k_m q3_k_m q2_k q8_0}
CAL_CHUNKS=${CAL_CHUNKS:-32}
EVAL_CHUNKS=${EVAL_CHUNKS:-30}
GPTQ_INPUTS=${GPTQ_INPUTS:-quantized}

mkdir -p "$BENCH_DIR"
python3 - "$LLQ_SHARED/corpus/wikitext-2-test.txt" "$BENCH_DIR" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8", newline="").read()
t = len(text) * 9 // 10
training = text[: text.index("\n", t) + 1]
h = len(training) // 2
cut = training.index("\n", h) + 1
open(f"{sys.argv[2]}/calibration.txt", "w", encoding="utf-8", newline="").write(training[:cut])
open(f"{sys.argv[2]}/eval.txt", "w", encoding="utf-8", newline="").write(training[cut:])
PY
cal=$BENCH_DIR/calibration.txt
eval_text=$BENCH_DIR/eval.txt
f32=$BENCH_DIR/f32.gguf
"$LLQ_BIN" convert "$SRC" -o "$f32" -t f32 --force --quiet 2>/dev/null
"$LLQ_BIN" imatrix "$f32" -f "$cal" -o "$BENCH_DIR/imatrix.dat" --chunks "$CAL_CHUNKS" \
    --process-output --quiet

echo "source: $SRC; calibration: $CAL_CHUNKS chunks; scored: $EVAL_CHUNKS chunks of 512 tokens"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); llq $(git -C "$REPO" rev-parse --short HEAD)"
echo
echo "| type | mode | bytes | KLD mean | ± | top-1 | PPL ratio | KLD / ggml+imatrix |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
timings=()
for ty in $TYPES; do
    ggml_kld=
    for mode in rtn ggml unbiased gptq; do
        out=$BENCH_DIR/$mode-$ty.gguf
        args=(quantize "$f32" "$out" "$ty" --force --quiet)
        case $mode in
            ggml) args+=(--imatrix "$BENCH_DIR/imatrix.dat") ;;
            unbiased) args+=(--imatrix "$BENCH_DIR/imatrix.dat" --quant-mode unbiased) ;;
            gptq) args+=(--imatrix "$BENCH_DIR/imatrix.dat" --quant-mode gptq
                         --calibration "$cal" --calibration-chunks "$CAL_CHUNKS"
                         --gptq-inputs "$GPTQ_INPUTS") ;;
        esac
        if [[ $mode == gptq ]]; then
            /usr/bin/time -v "$LLQ_BIN" "${args[@]}" 2>"$BENCH_DIR/time-$ty.txt"
            wall=$(grep 'Elapsed (wall clock)' "$BENCH_DIR/time-$ty.txt" | awk '{print $NF}')
            rss=$(grep 'Maximum resident' "$BENCH_DIR/time-$ty.txt" | awk '{print $NF}')
            timings+=("$ty: gptq conversion $wall wall, peak RSS $((rss / 1024)) MiB")
        else
            "$LLQ_BIN" "${args[@]}" 2>/dev/null
        fi
        json=$BENCH_DIR/$mode-$ty.json
        "$LLQ_BIN" compare "$f32" "$out" -f "$eval_text" --chunks "$EVAL_CHUNKS" --quiet \
            --json "$json" >/dev/null
        kld=$(jq -r .kld_mean "$json")
        [[ $mode == ggml ]] && ggml_kld=$kld
        ratio=$([[ -n $ggml_kld ]] && python3 -c "print(f'{$kld / $ggml_kld:.3f}')" || echo "")
        printf '| %s | %s | %d | %.4e | %.1e | %.4f | %.5f | %s |\n' "$ty" "$mode" \
            "$(stat -c %s "$out")" "$kld" "$(jq -r .kld_mean_err "$json")" \
            "$(jq -r .top1 "$json")" "$(jq -r .ppl_ratio "$json")" "$ratio"
    done
done
echo
printf '%s\n' "${timings[@]}"
