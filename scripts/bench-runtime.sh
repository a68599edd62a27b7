#!/usr/bin/env bash
# Runtime benchmark (issue 4): prompt processing (pp) and generation (tg) tokens/s of `llq bench`
# against llama.cpp (llama-cpp-python, scripts/llama_bench.py) on the same GGUF files, measured
# back to back, plus llq's memory roofline for generation.
#
# For each shape: a synthetic HF checkpoint (scripts/make_synthetic_checkpoint.py, random BF16),
# converted by `llq convert --type T` for T in BENCH_TYPES; then for each GGUF:
#   llq --threads N bench FILE -p PP -n TG -r REPS --json
#   llama_bench.py FILE -p PP -n TG -r REPS -t N
# in that order, immediately one after the other, with the 1-minute load average before each.
# If the load before a pair is above BENCH_MAX_LOAD the pair is re-run (up to BENCH_RETRIES)
# after a pause; the row records the load of the pair kept.
#
# Shapes (BENCH_SHAPES):
#   tinyllama  dim 2048, 22 layers, 32/4 heads, ffn 5632, vocab 32000 (TinyLlama-1.1B, 2.2 GB BF16)
#   7b-l8      dim 4096, 8 of 32 layers, 32/32 heads, ffn 11008, vocab 32000 (LLaMA-2-7B widths,
#              a quarter of its layers: 3.5 GB BF16 instead of 13.5). Per-token cost is then
#              ~8/32 of the layers plus the full embedding/output; see docs/benchmarks.md.
#   7b         the full 32 layers (13.5 GB BF16, ~29 GB of disk with the three GGUFs).
#
# Environment (all optional):
#   LLQ_BIN         llq binary (default: $CARGO_TARGET_DIR/release/llq, else target/release/llq)
#   PYTHON          python with numpy and llama-cpp-python (default: .venv/bin/python)
#   BENCH_DIR       scratch dir, gitignored (default: <repo>/bench-data/rt)
#   BENCH_SHAPES    (default: "tinyllama 7b-l8")
#   BENCH_TYPES     (default: "q4_0 q8_0 q4_k_m")
#   BENCH_THREADS   threads for both engines (default: 2)
#   BENCH_PP BENCH_TG BENCH_REPS   (default: 512 128 2)
#   BENCH_MAX_LOAD  re-run a pair measured above this 1-minute load (default: 3.0)
#   BENCH_RETRIES   (default: 2)
#   LLQ_KERNELS     caps llq's kernel table (avx2 on an AVX-512 machine against an AVX2 llama.cpp);
#                   each row records the ISA both sides ran with
#   KEEP_OUTPUTS    1 to keep GGUFs and checkpoints (default: GGUFs kept, they are reused)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLQ_BIN=${LLQ_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/llq}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
BENCH_DIR=${BENCH_DIR:-$REPO/bench-data/rt}
BENCH_SHAPES=${BENCH_SHAPES:-tinyllama 7b-l8}
BENCH_TYPES=${BENCH_TYPES:-q4_0 q8_0 q4_k_m}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_PP=${BENCH_PP:-512}
BENCH_TG=${BENCH_TG:-128}
BENCH_REPS=${BENCH_REPS:-2}
BENCH_MAX_LOAD=${BENCH_MAX_LOAD:-3.0}
BENCH_RETRIES=${BENCH_RETRIES:-2}

declare -A SHAPE_ARGS=(
  [tinyllama]="--dim 2048 --layers 22 --heads 32 --kv-heads 4 --ffn 5632 --vocab 32000"
  [7b-l8]="--dim 4096 --layers 8 --heads 32 --kv-heads 32 --ffn 11008 --vocab 32000"
  [7b]="--dim 4096 --layers 32 --heads 32 --kv-heads 32 --ffn 11008 --vocab 32000"
)

[[ -x $LLQ_BIN ]] || { echo "no llq binary at $LLQ_BIN (cargo build --release, or set LLQ_BIN)" >&2; exit 1; }
mkdir -p "$BENCH_DIR"
RESULTS=$BENCH_DIR/runtime.tsv
[[ -s $RESULTS ]] || printf 'date\tshape\ttype\tfile_mb\tthreads\tllq_pp\tlcpp_pp\tpp_ratio\tllq_tg\tlcpp_tg\ttg_ratio\tread_gb_s\tmb_per_tok\troof_tok_s\tllq_roof_pct\tlcpp_roof_pct\tllq_isa\tlcpp_isa\tload_before\tload_after\n' >"$RESULTS"

load1() { cut -d' ' -f1 /proc/loadavg; }

for shape in $BENCH_SHAPES; do
  [[ -n ${SHAPE_ARGS[$shape]:-} ]] || { echo "unknown shape $shape" >&2; exit 1; }
  hf=$BENCH_DIR/hf-$shape
  for type in $BENCH_TYPES; do
    gguf=$BENCH_DIR/$shape-$type.gguf
    if [[ ! -s $gguf ]]; then
      # The checkpoint is only needed for GGUFs not written yet (the 7b one is 13.5 GB).
      if [[ ! -f $hf/config.json ]]; then
        echo "== synthetic checkpoint $shape" >&2
        # shellcheck disable=SC2086
        "$PYTHON" "$REPO/scripts/make_synthetic_checkpoint.py" "$hf" ${SHAPE_ARGS[$shape]} >&2
      fi
      echo "== llq convert $shape --type $type" >&2
      "$LLQ_BIN" convert "$hf" --type "$type" -o "$gguf" >&2
    fi
    cat "$gguf" >/dev/null # page cache warm for both engines
    file_mb=$(du -B1 --apparent-size "$gguf" | awk '{printf "%.0f", $1/1e6}')
    for attempt in $(seq 0 "$BENCH_RETRIES"); do
      lb=$(load1)
      echo "== $shape $type: llq then llama.cpp (load $lb, attempt $attempt)" >&2
      llq_json=$("$LLQ_BIN" --threads "$BENCH_THREADS" bench "$gguf" -p "$BENCH_PP" -n "$BENCH_TG" -r "$BENCH_REPS" --json)
      lcpp_json=$("$PYTHON" "$REPO/scripts/llama_bench.py" "$gguf" -p "$BENCH_PP" -n "$BENCH_TG" -r "$BENCH_REPS" -t "$BENCH_THREADS")
      la=$(load1)
      echo "   llq:       $llq_json" >&2
      echo "   llama.cpp: $lcpp_json" >&2
      # Our own 2 threads add ~2 to the load; above BENCH_MAX_LOAD someone else is competing.
      if awk -v l="$lb" -v m="$BENCH_MAX_LOAD" 'BEGIN{exit !(l <= m)}' || [[ $attempt == "$BENCH_RETRIES" ]]; then
        break
      fi
      echo "   load $lb > $BENCH_MAX_LOAD: re-running after 30 s" >&2
      sleep 30
    done
    "$PYTHON" - "$llq_json" "$lcpp_json" "$shape" "$type" "$file_mb" "$lb" "$la" >>"$RESULTS" <<'PY'
import json, sys, time
q, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
shape, ty, mb, lb, la = sys.argv[3:8]
roof = q["roofline_tok_s"]
row = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), shape, ty, mb, q["threads"],
       f'{q["pp_tok_s"]:.2f}', f'{c["pp_tok_s"]:.2f}', f'{q["pp_tok_s"] / c["pp_tok_s"]:.2f}',
       f'{q["tg_tok_s"]:.2f}', f'{c["tg_tok_s"]:.2f}', f'{q["tg_tok_s"] / c["tg_tok_s"]:.2f}',
       f'{q["read_gb_s"]:.1f}', f'{q["bytes_per_token"] / 1e6:.0f}', f'{roof:.2f}',
       f'{100 * q["tg_tok_s"] / roof:.0f}', f'{100 * c["tg_tok_s"] / roof:.0f}', q["kernels"], c["isa"], lb, la]
print("\t".join(map(str, row)))
PY
  done
done

# The table, markdown, for docs/benchmarks.md.
echo
echo "| shape | type | file MB | llq pp | llama.cpp pp | pp ratio | llq tg | llama.cpp tg | tg ratio | read GB/s | MB/token | roofline tok/s | llq % roof | llama.cpp % roof | ISA llq / llama.cpp | load before/after |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|"
tail -n +2 "$RESULTS" | awk -F'\t' -v OFS=' | ' '{print "| " $2, $3, $4, $6, $7, $8 "×", $9, $10, $11 "×", $12, $13, $14, $15 " %", $16 " %", $17 " / " $18, $19 " / " $20 " |"}'
