#!/usr/bin/env bash
# `llq compare` benchmark (issue 5): llq's one-pass reference-vs-quant comparison against
# llama.cpp's two-step KL-divergence workflow, on the same GGUF files, texts, context and threads.
#
# Files: the fixture (fixtures/tiny-llama/hf) converted by `llq convert` to F16 (reference) and
# Q4_K_M (quant). Texts: the held-out 10 % of the shared WikiText-2 corpus, cut exactly as
# tests/common/mod.rs `heldout_text` does (after the first newline past 90 % of the characters),
# at each length in BENCH_LENGTHS (a fraction < 1 keeps the start of it up to a newline; an
# integer N >= 1 repeats it N times). For each text, BENCH_REPS times, back to back:
#   llq --threads T compare F16 Q4KM -f TEXT --ctx C --json OUT
#   llama-perplexity -m F16  -f TEXT -c C -t T --kl-divergence-base BASE        (step 1: base logits)
#   llama-perplexity -m Q4KM -c C -t T --kl-divergence-base BASE --kl-divergence (step 2: KLD)
# each under /usr/bin/time -v (wall, peak RSS), with the 1-minute load average before it.
# Both tools evaluate every whole chunk of C tokens of the text (same tokenizer, same chunking).
# It prints two markdown tables: wall/RSS (best of the reps per step) with the ratio
# llama.cpp (both steps) / llq, and the statistics both tools report side by side.
# Then every run with its CPU seconds (user + sys): on a shared machine llama.cpp's spinning
# threads make its wall time swing several-fold, and CPU time tells load from work.
# Raw rows go to $BENCH_DIR/compare.tsv; logs and JSON stay in $BENCH_DIR.
#
# It builds nothing: llama-perplexity must already exist. To build it under bench-data/
# (llama.cpp's source as vendored in the llama-cpp-python 0.3.36 sdist; never committed), from
# the repo root; the sdist goes where bench-convert.sh looks for it (its LCP_SDIST default):
#   pip download --no-deps --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d bench-data/lcp-sdist
#   mkdir -p bench-data/llama.cpp-src && tar -xzf bench-data/lcp-sdist/llama_cpp_python-0.3.36.tar.gz \
#     -C bench-data/llama.cpp-src --strip-components=3 llama_cpp_python-0.3.36/vendor/llama.cpp
#   cd bench-data/llama.cpp-src && cmake -S . -B build -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
#     -DCMAKE_BUILD_TYPE=Release && cmake --build build --target llama-perplexity -j2
#
# Environment (all optional):
#   LLQ_BIN            llq binary (default: $CARGO_TARGET_DIR/release/llq, else target/release/llq)
#   LLAMA_PERPLEXITY   (default: <repo>/bench-data/llama.cpp-src/build/bin/llama-perplexity)
#   LLQ_SHARED         shared data folder with corpus/wikitext-2-test.txt (default: <repo>/../shared)
#   PYTHON             python3 for cutting texts; with llama-cpp-python it also counts the text's
#                      tokens (default: <repo>/.venv/bin/python, else python3)
#   BENCH_DIR          scratch dir, gitignored (default: <repo>/bench-data/cmp)
#   BENCH_LENGTHS      text lengths in units of the held-out text (default: "1 4")
#   BENCH_THREADS      threads for both tools (default: 2)
#   BENCH_CTX          context / chunk size for both tools (default: 512)
#   BENCH_REPS         repetitions; the best wall time per step is kept (default: 2)
#   PEER_ARGS          extra llama-perplexity options for both steps (default: none). The
#                      sdist's llama.cpp built with GGML_NATIVE on AVX-512 crashes (SIGSEGV)
#                      repacking the fixture's Q4_K_M file; `--no-repack` avoids that.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LLQ_BIN=${LLQ_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/llq}
LLAMA_PERPLEXITY=${LLAMA_PERPLEXITY:-$REPO/bench-data/llama.cpp-src/build/bin/llama-perplexity}
LLQ_SHARED=${LLQ_SHARED:-$REPO/../shared}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
[[ -x $PYTHON ]] || PYTHON=python3
BENCH_DIR=${BENCH_DIR:-$REPO/bench-data/cmp}
BENCH_LENGTHS=${BENCH_LENGTHS:-1 4}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CTX=${BENCH_CTX:-512}
BENCH_REPS=${BENCH_REPS:-2}
PEER_ARGS=${PEER_ARGS:-}
FIXTURE=$REPO/fixtures/tiny-llama/hf
CORPUS=$LLQ_SHARED/corpus/wikitext-2-test.txt

[[ -x $LLQ_BIN ]] || { echo "no llq binary at $LLQ_BIN (cargo build --release, or set LLQ_BIN)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time missing: apt-get install -y time" >&2; exit 1; }
[[ -f $CORPUS ]] || { echo "no corpus at $CORPUS (set LLQ_SHARED)" >&2; exit 1; }
if [[ ! -x $LLAMA_PERPLEXITY ]]; then
  echo "no llama-perplexity at $LLAMA_PERPLEXITY (set LLAMA_PERPLEXITY); to build it, see the" >&2
  echo "header of $0 (llama.cpp from the llama-cpp-python 0.3.36 sdist, cmake --target llama-perplexity)" >&2
  exit 1
fi
mkdir -p "$BENCH_DIR"
RESULTS=$BENCH_DIR/compare.tsv
printf 'length\trep\ttool\tstep\twall_s\trss_mb\tload1\tcpu_s\n' >"$RESULTS"

REF=$BENCH_DIR/f16.gguf
QUANT=$BENCH_DIR/q4_k_m.gguf
[[ -s $REF ]] || "$LLQ_BIN" convert "$FIXTURE" --type f16 -o "$REF" --force --quiet >&2
[[ -s $QUANT ]] || "$LLQ_BIN" convert "$FIXTURE" --type q4_k_m -o "$QUANT" --force --quiet >&2
cat "$REF" "$QUANT" >/dev/null # page cache warm for both tools

# timed LENGTH REP TOOL STEP LOG -- CMD...: run CMD under /usr/bin/time -v (its stdout+stderr to
# LOG), append a row. The load average goes in the row: the machine is shared.
timed() {
  local length=$1 rep=$2 tool=$3 step=$4 log=$5 tv=$BENCH_DIR/time.txt load
  shift 6
  load=$(cut -d' ' -f1 /proc/loadavg)
  if ! /usr/bin/time -v -o "$tv" "$@" >"$log" 2>&1; then
    echo "FAILED: $*" >&2
    tail -20 "$log" >&2
    return 1
  fi
  awk -F': ' -v OFS='\t' -v a="$length" -v b="$rep" -v c="$tool" -v d="$step" -v load="$load" '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); wall = 0; for (i = 1; i <= n; i++) wall = wall * 60 + p[i] }
    /Maximum resident set size/ { rss = $2 * 1024 / 1e6 }
    /User time \(seconds\)|System time \(seconds\)/ { cpu += $2 }
    END { printf "%s\t%s\t%s\t%s\t%.2f\t%.1f\t%s\t%.2f\n", a, b, c, d, wall, rss, load, cpu }
  ' "$tv" | tee -a "$RESULTS" >&2
}

declare -A NTOK
for length in $BENCH_LENGTHS; do
  text=$BENCH_DIR/text-$length.txt
  # newline='' keeps the corpus's \r\n as they are, as Rust's read_to_string does.
  "$PYTHON" - "$CORPUS" "$length" "$text" <<'PY'
import sys
corpus, length, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
s = open(corpus, encoding="utf-8", newline="").read()
t = len(s) * 9 // 10
h = s[s.index("\n", t) + 1:]
if length < 1:
    cut = int(len(h) * length)
    h = h[: h.index("\n", cut) + 1]
else:
    h = h * int(length)
open(out, "w", encoding="utf-8", newline="").write(h)
PY
  NTOK[$length]=$("$PYTHON" - "$REF" "$text" 2>/dev/null <<'PY' || echo "-"
import sys, llama_cpp
m = llama_cpp.Llama(sys.argv[1], vocab_only=True, verbose=False)
print(len(m.tokenize(open(sys.argv[2], "rb").read(), add_bos=True, special=False)))
PY
)
  base=$BENCH_DIR/base-$length.kld
  for rep in $(seq 1 "$BENCH_REPS"); do
    echo "== length $length, rep $rep: llq, then llama.cpp base + kld ($(uptime))" >&2
    timed "$length" "$rep" llq compare "$BENCH_DIR/llq-$length.log" -- \
      "$LLQ_BIN" --threads "$BENCH_THREADS" compare "$REF" "$QUANT" -f "$text" \
      --ctx "$BENCH_CTX" --json "$BENCH_DIR/llq-$length.json" --quiet
    rm -f "$base"
    timed "$length" "$rep" llama.cpp base "$BENCH_DIR/lcpp-base-$length.log" -- \
      "$LLAMA_PERPLEXITY" -m "$REF" -f "$text" -c "$BENCH_CTX" -t "$BENCH_THREADS" \
      --kl-divergence-base "$base" $PEER_ARGS
    timed "$length" "$rep" llama.cpp kld "$BENCH_DIR/lcpp-kld-$length.log" -- \
      "$LLAMA_PERPLEXITY" -m "$QUANT" -c "$BENCH_CTX" -t "$BENCH_THREADS" \
      --kl-divergence-base "$base" --kl-divergence $PEER_ARGS
  done
done

# Wall / RSS table: best wall per (length, step) over the reps; the RSS and load of that run.
echo
echo "| text | tool | text tokens | chunks | wall s | peak RSS MB | ratio llama.cpp/llq (wall) | base file MB | load1 |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|"
for length in $BENCH_LENGTHS; do
  chunks=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["chunks"])' "$BENCH_DIR/llq-$length.json")
  base_mb=$(du -B1 --apparent-size "$BENCH_DIR/base-$length.kld" | awk '{printf "%.1f", $1/1e6}')
  awk -F'\t' -v L="$length" -v ntok="${NTOK[$length]}" -v chunks="$chunks" -v base_mb="$base_mb" '
    NR > 1 && $1 == L {
      k = $3 "|" $4
      if (!(k in w) || $5 < w[k]) { w[k] = $5; r[k] = $6; l[k] = $7 }
    }
    END {
      q = "llq|compare"; b = "llama.cpp|base"; d = "llama.cpp|kld"
      tot = w[b] + w[d]; rss = (r[b] > r[d]) ? r[b] : r[d]
      printf "| %s× held-out | llq compare | %s | %s | %.2f | %.1f | 1 | - | %s |\n", L, ntok, chunks, w[q], r[q], l[q]
      printf "| %s× held-out | llama.cpp step 1 (`--kl-divergence-base`) | %s | %s | %.2f | %.1f | %.2f | %s | %s |\n", L, ntok, chunks, w[b], r[b], w[b] / w[q], base_mb, l[b]
      printf "| %s× held-out | llama.cpp step 2 (`--kl-divergence`) | %s | %s | %.2f | %.1f | %.2f | - | %s |\n", L, ntok, chunks, w[d], r[d], w[d] / w[q], l[d]
      printf "| %s× held-out | **llama.cpp, both steps** | %s | %s | **%.2f** | %.1f | **%.2f** | %s | |\n", L, ntok, chunks, tot, rss, tot / w[q], base_mb
    }' "$RESULTS"
done

# Agreement: what each tool reports (last rep; the numbers do not depend on the rep).
echo
echo "| text | figure | llq | llama.cpp | llq − llama.cpp |"
echo "|---|---|--:|--:|--:|"
for length in $BENCH_LENGTHS; do
  "$PYTHON" - "$length" "$BENCH_DIR/llq-$length.json" "$BENCH_DIR/lcpp-kld-$length.log" <<'PY'
import json, re, sys
length, q, log = sys.argv[1], json.load(open(sys.argv[2])), open(sys.argv[3], encoding="utf-8").read()
def grab(label):
    m = re.search(re.escape(label) + r"\s*:\s*(-?[0-9.]+)", log)
    return float(m.group(1)) if m else float("nan")
rows = [
    ("PPL(F16)", q["ppl_ref"], grab("Mean PPL(base)"), "{:.4f}"),
    ("PPL(Q4_K_M)", q["ppl_quant"], grab("Mean PPL(Q)"), "{:.4f}"),
    ("ln(PPL ratio)", q["ln_ppl_ratio"], grab("Mean ln(PPL(Q)/PPL(base))"), "{:.6f}"),
    ("KLD mean", q["kld_mean"], grab("Mean    KLD"), "{:.6f}"),
    ("KLD median", q["kld_median"], grab("Median  KLD"), "{:.6f}"),
    ("KLD p99", q["kld_p99"], grab("99.0%   KLD"), "{:.6f}"),
    ("KLD max", q["kld_max"], grab("Maximum KLD"), "{:.6f}"),
    ("same top p %", 100 * q["top1"], grab("Same top p"), "{:.3f}"),
    ("RMS Δp %", 100 * q["rms_dp"], grab("RMS Δp"), "{:.3f}"),
]
if all(b != b for _, _, b, _ in rows):
    # Seen once on a loaded machine: llama-perplexity exited 0 after the last chunk's line
    # without its summary. Re-run the pair (the timing row is still valid).
    print(f"| {length}× | (no summary statistics in {sys.argv[3]}) | | | |")
for name, a, b, f in rows:
    print(f"| {length}× | {name} | {f.format(a)} | {f.format(b)} | {a - b:+.1e} |")
PY
done

# Every run, with CPU seconds (user + sys): on a shared machine wall time alone can mislead.
echo
echo "All runs (wall s, peak RSS MB, 1-minute load before, CPU s):"
column -t -s $'\t' "$RESULTS"
