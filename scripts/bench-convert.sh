#!/usr/bin/env bash
# End-to-end convert benchmark: llq's single pass vs llama.cpp's convert_hf_to_gguf.py + quantize
# on the same synthetic HF LLaMA checkpoints, in the same run (same machine load, same cache).
#
# For each size it records wall time and peak RSS (from /usr/bin/time -v) of:
#   llq convert SRC --type {f16,q8_0,q4_0,q4_k_m} --threads {1,2}
#   peer: convert_hf_to_gguf.py SRC --outtype f16, then llama_model_quantize -> q8_0/q4_0/q4_k_m
# and prints a table plus llq-vs-peer wall-time ratios. Raw rows go to $BENCH_DIR/results.tsv.
#
# Environment (all optional):
#   LLQ_BIN        llq binary (default: $CARGO_TARGET_DIR/release/llq, else target/release/llq)
#   BENCH_DIR      scratch dir, gitignored (default: <repo>/bench-data)
#   BENCH_SIZES    synthetic shapes, see make_synthetic_checkpoint.py (default: "small default")
#   BENCH_TYPES    llq types (default: "f16 q8_0 q4_0 q4_k_m"; the peer runs those in PEER_FTYPE)
#   BENCH_THREADS  thread counts (default: "1 2")
#   BENCH_PEER     1 to run the llama.cpp path too (default 1)
#   GEN_PYTHON     python with numpy, for the synthetic checkpoint (default: .venv/bin/python)
#   PEER_CONVERT_PYTHON  python with torch+transformers+sentencepiece (default: the fixture venv,
#                        made by scripts/setup-fixture-python.sh)
#   PEER_QUANT_PYTHON    python with llama-cpp-python 0.3.36 (default: .venv/bin/python)
#   LCP_SDIST      where the llama-cpp-python sdist is (or is downloaded to)
#   KEEP_OUTPUTS   1 to keep the GGUF outputs (default: deleted after each size, disk is shared)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLQ_BIN=${LLQ_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/llq}
BENCH_DIR=${BENCH_DIR:-$REPO/bench-data}
BENCH_SIZES=${BENCH_SIZES:-small default}
BENCH_TYPES=${BENCH_TYPES:-f16 q8_0 q4_0 q4_k_m}
BENCH_THREADS=${BENCH_THREADS:-1 2}
BENCH_PEER=${BENCH_PEER:-1}
GEN_PYTHON=${GEN_PYTHON:-$REPO/.venv/bin/python}
PEER_CONVERT_PYTHON=${PEER_CONVERT_PYTHON:-$("$REPO/scripts/setup-fixture-python.sh")}
PEER_QUANT_PYTHON=${PEER_QUANT_PYTHON:-$REPO/.venv/bin/python}
LCP_VERSION=0.3.36
# llama_ftype numbers (llama.h) for the peer's quantize step.
declare -A PEER_FTYPE=([q8_0]=7 [q4_0]=2 [q4_k_m]=15 [q2_k]=10 [q3_k_m]=12 [q5_k_m]=17 [q6_k]=18)

[[ -x $LLQ_BIN ]] || { echo "no llq binary at $LLQ_BIN (cargo build --release, or set LLQ_BIN)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time missing: apt-get install -y time" >&2; exit 1; }
mkdir -p "$BENCH_DIR/out"
RESULTS=$BENCH_DIR/results.tsv
printf 'size\ttool\tstep\ttype\tthreads\tin_mb\twall_s\tmb_s\trss_mb\tload1\n' >"$RESULTS"

mb() { du -B1 --apparent-size -c "$@" | tail -1 | awk '{printf "%.0f", $1/1e6}'; }

# timed SIZE TOOL STEP TYPE THREADS IN_MB -- CMD...: run CMD under /usr/bin/time -v, append a row.
# The 1-minute load average goes in the row because the machine is shared: a busy neighbour
# shows up as load > our thread count and explains a slow figure.
timed() {
  local size=$1 tool=$2 step=$3 type=$4 threads=$5 in_mb=$6
  shift 7
  local tv=$BENCH_DIR/out/time.txt load
  load=$(cut -d' ' -f1 /proc/loadavg)
  if ! /usr/bin/time -v -o "$tv" "$@" >"$BENCH_DIR/out/cmd.log" 2>&1; then
    echo "FAILED: $*" >&2
    tail -20 "$BENCH_DIR/out/cmd.log" >&2
    return 1
  fi
  awk -F': ' -v size="$size" -v tool="$tool" -v step="$step" -v type="$type" -v th="$threads" \
    -v in_mb="$in_mb" -v load="$load" '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); wall = 0; for (i = 1; i <= n; i++) wall = wall * 60 + p[i] }
    /Maximum resident set size/ { rss = $2 / 1024 }
    END { printf "%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t%.0f\t%s\n", size, tool, step, type, th, in_mb, wall, in_mb / wall, rss, load }
  ' "$tv" | tee -a "$RESULTS"
}

# The peer's converter is fetched at bench time from the llama-cpp-python sdist (it vendors
# llama.cpp at a matching commit) and never committed: it is MIT code of another project and
# this keeps the converter version pinned to the quantizer's.
fetch_peer() {
  local dst=$BENCH_DIR/llama.cpp
  # The converter imports its sibling packages gguf-py/ and conversion/.
  [[ -f $dst/convert_hf_to_gguf.py && -d $dst/conversion ]] && return 0
  local sdist=${LCP_SDIST:-$BENCH_DIR/lcp-sdist} tarball
  tarball=$(ls "$sdist"/llama_cpp_python-$LCP_VERSION.tar.gz 2>/dev/null || true)
  if [[ -z $tarball ]]; then
    # --no-binary for this one package only: ":all:" would also force pip to build the
    # metadata step's own build dependencies (cmake) from source, which takes many minutes.
    "$PEER_QUANT_PYTHON" -m pip download --no-deps --no-binary llama-cpp-python \
      "llama-cpp-python==$LCP_VERSION" -d "$sdist" >&2
    tarball=$sdist/llama_cpp_python-$LCP_VERSION.tar.gz
  fi
  mkdir -p "$dst"
  tar -xzf "$tarball" -C "$dst" --strip-components=3 \
    "llama_cpp_python-$LCP_VERSION/vendor/llama.cpp/convert_hf_to_gguf.py" \
    "llama_cpp_python-$LCP_VERSION/vendor/llama.cpp/gguf-py" \
    "llama_cpp_python-$LCP_VERSION/vendor/llama.cpp/conversion"
}

if [[ $BENCH_PEER == 1 ]]; then fetch_peer; fi

for size in $BENCH_SIZES; do
  src=$BENCH_DIR/hf-$size
  if [[ ! -f $src/config.json ]]; then
    "$GEN_PYTHON" "$REPO/scripts/make_synthetic_checkpoint.py" "$src" --shape "$size"
  fi
  in_mb=$(mb "$src"/*.safetensors)
  # Warm the page cache so every run reads from RAM: we measure converters, not the disk, and
  # the first tool would otherwise pay for everyone.
  cat "$src"/*.safetensors >/dev/null
  echo "== $size: $in_mb MB BF16 safetensors; $(uptime)" >&2

  for type in $BENCH_TYPES; do
    for th in $BENCH_THREADS; do
      timed "$size" llq convert "$type" "$th" "$in_mb" -- \
        "$LLQ_BIN" convert "$src" -o "$BENCH_DIR/out/llq-$type.gguf" --type "$type" \
        --threads "$th" --force --quiet
      rm -f "$BENCH_DIR/out/llq-$type.gguf"
    done
  done

  if [[ $BENCH_PEER == 1 ]]; then
    f16=$BENCH_DIR/out/peer-f16.gguf
    # convert_hf_to_gguf.py has no thread option that matters here: report it as 1 thread.
    timed "$size" llama.cpp convert f16 1 "$in_mb" -- \
      env PYTHONPATH="$BENCH_DIR/llama.cpp/gguf-py" "$PEER_CONVERT_PYTHON" \
      "$BENCH_DIR/llama.cpp/convert_hf_to_gguf.py" "$src" --outfile "$f16" --outtype f16
    f16_mb=$(mb "$f16")
    for type in $BENCH_TYPES; do
      [[ -n ${PEER_FTYPE[$type]:-} ]] || continue
      for th in $BENCH_THREADS; do
        timed "$size" llama.cpp quantize "$type" "$th" "$f16_mb" -- \
          "$PEER_QUANT_PYTHON" "$REPO/scripts/llama_quantize.py" "$f16" \
          "$BENCH_DIR/out/peer-$type.gguf" "${PEER_FTYPE[$type]}" "$th"
        rm -f "$BENCH_DIR/out/peer-$type.gguf"
      done
    done
  fi
  [[ ${KEEP_OUTPUTS:-0} == 1 ]] || rm -f "$BENCH_DIR"/out/*.gguf
done

echo
echo "## All runs (MB/s = MB of the step's input / wall s; RSS = peak resident, incl. mmapped input pages)"
column -t -s $'\t' "$RESULTS"

if [[ $BENCH_PEER == 1 ]]; then
  echo
  echo "## llq single pass vs llama.cpp convert(f16) + quantize, same thread count"
  echo "## ratio = peer wall / llq wall (>1: llq faster)"
  awk -F'\t' '
    NR == 1 { next }
    $2 == "llq" { llq[$1 "|" $4 "|" $5] = $7; lrss[$1 "|" $4 "|" $5] = $9; keys[++n] = $1 "|" $4 "|" $5 }
    $2 == "llama.cpp" && $3 == "convert" { conv[$1] = $7; crss[$1] = $9 }
    $2 == "llama.cpp" && $3 == "quantize" { q[$1 "|" $4 "|" $5] = $7; qrss[$1 "|" $4 "|" $5] = $9 }
    END {
      printf "%-8s %-7s %-3s %9s %9s %9s %7s %9s %9s\n", "size", "type", "thr", "llq_s", "peer_s", "ratio", "", "llq_rss", "peer_rss"
      for (i = 1; i <= n; i++) {
        k = keys[i]; split(k, f, "|")
        if (!(f[1] in conv)) continue
        if (f[2] == "f16") { p = conv[f[1]]; prss = crss[f[1]] }
        else if (k in q) { p = conv[f[1]] + q[k]; prss = (crss[f[1]] > qrss[k]) ? crss[f[1]] : qrss[k] }
        else continue
        printf "%-8s %-7s %-3s %9.2f %9.2f %9.2f %7s %9.0f %9.0f\n", f[1], f[2], f[3], llq[k], p, p / llq[k], "", lrss[k], prss
      }
    }' "$RESULTS"
fi
