#!/usr/bin/env bash
# Build the workspace for aarch64-unknown-linux-gnu on an x86_64 Debian 12 (bookworm) host and
# run its tests under qemu-user, once per emulated CPU model: by default `max` (NEON + dotprod,
# so the `neondot` kernel table) and `cortex-a72` (plain ARMv8.0 NEON, so `neon` and the
# dotprod check's fallback). Exits 1 if a test fails, 2 on a setup error.
#
# Toolchain: Debian's rustc-web/cargo-web (1.96, from bookworm-security; bookworm main's 1.85 is
# older than the workspace's rust-version) with the arm64 std of libstd-rust-web-dev:arm64,
# linked by aarch64-linux-gnu-gcc. The rustup toolchain on PATH has no aarch64 std and is not
# used.
#
# Settings (environment variables; paths default to ones inside the repo):
#   A64_TARGET_DIR  CARGO_TARGET_DIR of the aarch64 build (default: target/aarch64-qemu; apart
#                   from the host build, which another compiler makes)
#   A64_CPUS        qemu CPU models the kernels crate is tested on, each also with
#                   LLQ_KERNELS=scalar (default: "max cortex-a72")
#   A64_WIDE_CPUS   those of them the other crates are tested on too (default: "max"; they
#                   reach the kernels only through the tables, and the NEON quantized kernels
#                   equal the scalar reference, so their results do not depend on the CPU)
#   A64_SCOPE       what "the other crates" are: lib (default: the formats crate and llq's unit
#                   tests) or workspace (every test, which needs binfmt_misc for the llq CLI
#                   tests; the fit:: tests are skipped, as each --fit calibration runs for more
#                   than 10 minutes under qemu)
#   A64_CLIPPY      1: clippy -D warnings for the aarch64 target first (default 1)
#   A64_JOBS        cargo -j (default 2)
#   A64_INSTALL     auto (install missing Debian packages as root, or through sudo) | no
#   A64_BINFMT      auto (use qemu-aarch64's binfmt_misc entry, registering it when root) | no
# The Python/ggml references cannot run under qemu: LLQ_PYTHON, LLQ_GGML_LIB, LLQ_SHARED, CI and
# LLQ_REQUIRE_REFERENCES are unset, so the tests that need them skip. The x86 run covers them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

A64_TARGET_DIR=${A64_TARGET_DIR:-$root/target/aarch64-qemu}
A64_CPUS=${A64_CPUS:-max cortex-a72}
A64_WIDE_CPUS=${A64_WIDE_CPUS:-max}
A64_CLIPPY=${A64_CLIPPY:-1}
A64_JOBS=${A64_JOBS:-2}
A64_INSTALL=${A64_INSTALL:-auto}
A64_BINFMT=${A64_BINFMT:-auto}
triple=aarch64-unknown-linux-gnu

log() { echo "== [aarch64] $*" >&2; }
fail() {
  echo "test-aarch64.sh: $*" >&2
  exit 2
}
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    return 1
  fi
}

# --- packages ----------------------------------------------------------------------------------
t0=$SECONDS
pkgs=(rustc-web cargo-web rust-web-clippy libstd-rust-web-dev:arm64 libc6:arm64 libgcc-s1:arm64
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$A64_INSTALL" != no ] || fail "missing packages: ${missing[*]} (A64_INSTALL=no)"
  log "installing ${missing[*]}"
  dpkg --print-foreign-architectures | grep -qx arm64 || as_root dpkg --add-architecture arm64 ||
    fail "cannot add the arm64 architecture (needs root)"
  as_root apt-get update -qq || fail "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null ||
    fail "apt-get install ${pkgs[*]} failed"
  log "packages: $((SECONDS - t0)) s"
fi

RUSTC=/usr/bin/rustc
RUSTDOC=/usr/bin/rustdoc # the doc tests need the same compiler: PATH's rustdoc has no arm64 std
CARGO=/usr/bin/cargo
have=$("$RUSTC" -V | awk '{print $2}')
want=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -1)
if [ -n "$want" ] && [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
  fail "Debian's rustc $have is older than the workspace's rust-version $want"
fi
[ -d "$("$RUSTC" --print sysroot)/lib/rustlib/$triple" ] || fail "no $triple std for $RUSTC"

# --- binfmt_misc: lets a test exec an aarch64 binary (the llq CLI, the test binary itself) ------
bf=/proc/sys/fs/binfmt_misc
binfmt=0
if [ "$A64_BINFMT" = no ]; then
  : # as if there were none, even if registered
elif [ -e "$bf/qemu-aarch64" ] && grep -qx enabled "$bf/qemu-aarch64"; then
  binfmt=1
elif [ "$(id -u)" = 0 ]; then
  [ -e "$bf/register" ] || mount -t binfmt_misc binfmt_misc "$bf" 2>/dev/null || true
  # ELF64, little-endian, e_machine 0xb7 (AArch64), ET_EXEC or ET_DYN: the line Debian's
  # qemu-user-binfmt registers. It stays registered, for the whole machine, until reboot.
  if [ -w "$bf/register" ] && printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64:' \
    >"$bf/register" 2>/dev/null; then
    binfmt=1
  fi
fi
if [ "$binfmt" = 1 ]; then
  log "binfmt_misc: qemu-aarch64 registered"
else
  log "binfmt_misc unavailable: the tests that start aarch64 processes are left out"
fi
A64_SCOPE=${A64_SCOPE:-lib}
[ "$A64_SCOPE" != workspace ] || [ "$binfmt" = 1 ] || fail "A64_SCOPE=workspace needs binfmt_misc"

# --- environment -------------------------------------------------------------------------------
export RUSTC RUSTDOC CARGO_TERM_COLOR=never
export CARGO_TARGET_DIR="$A64_TARGET_DIR"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# The CPU model goes in QEMU_CPU, not `-cpu`, so that children started through binfmt get it
# too. No -L / QEMU_LD_PREFIX: the loader and libc are the multiarch libc6:arm64 ones under
# /lib, and the cross sysroot's loader with that libc hangs at the first thread start.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
unset QEMU_LD_PREFIX LLQ_PYTHON LLQ_GGML_LIB LLQ_SHARED LLQ_KERNELS CI LLQ_REQUIRE_REFERENCES

ct=("$CARGO" test -j "$A64_JOBS" --target "$triple" --no-fail-fast)
kernels=(-p llq-kernels)
# Without binfmt the kernels' LLQ_KERNELS test cannot start its children: it is skipped there
# and its in-process branches run on their own below.
[ "$binfmt" = 1 ] || kernels+=(-- --skip llq_kernels_forces_a_table)
case "$A64_SCOPE" in
  lib) wide=("-p llq-formats" "-p llq --lib") ;;
  workspace) wide=("--workspace --exclude llq-kernels -- --skip fit::") ;;
  *) fail "A64_SCOPE must be lib or workspace" ;;
esac

log "rustc $have, $(qemu-aarch64 --version | head -1), scope $A64_SCOPE, cpus $A64_CPUS (wide: $A64_WIDE_CPUS)"
status=0
t1=$SECONDS
if [ "$A64_CLIPPY" = 1 ]; then
  # PATH first: cargo runs the clippy-driver next to it, Debian's for Debian's cargo.
  if PATH=/usr/bin:$PATH "$CARGO" clippy -j "$A64_JOBS" --target "$triple" --workspace \
    --all-targets -- -D warnings; then
    log "ok: clippy ($((SECONDS - t1)) s)"
  else
    log "FAILED: clippy ($((SECONDS - t1)) s)"
    status=1
  fi
fi
t1=$SECONDS
"${ct[@]}" --no-run -p llq-kernels || { log "build failed"; exit 1; }
for sel in "${wide[@]}"; do
  # shellcheck disable=SC2086 # each selection is a list of cargo arguments
  "${ct[@]}" --no-run ${sel%% -- *} || { log "build failed"; exit 1; }
done
log "build: $((SECONDS - t1)) s"

run() { # label, then VAR=value... and the command, as for env(1)
  local label=$1 t=$SECONDS
  shift
  log "test: $label"
  if env "$@"; then
    log "ok: $label ($((SECONDS - t)) s)"
  else
    log "FAILED: $label ($((SECONDS - t)) s)"
    status=1
  fi
}
# The kernel tables a CPU model must give, weakest first (dot::tables() without the scalar
# one): checks that each model really tests the table it is here for.
expect_tables() {
  case "$1" in
    max) echo '["neon", "neondot"]' ;;
    cortex-a72) echo '["neon"]' ;;
  esac
}
t1=$SECONDS
for cpu in $A64_CPUS; do
  run "cpu=$cpu ${kernels[*]}" QEMU_CPU="$cpu" "${ct[@]}" "${kernels[@]}"
  if [ "$binfmt" = 0 ]; then
    for k in scalar neon; do
      run "cpu=$cpu LLQ_KERNELS=$k llq_kernels_forces_a_table" QEMU_CPU="$cpu" LLQ_KERNELS="$k" \
        "${ct[@]}" -p llq-kernels -- --exact dot::kernels::llq_kernels_forces_a_table
    done
  fi
  if [[ " $A64_WIDE_CPUS " == *" $cpu "* ]]; then
    for sel in "${wide[@]}"; do
      # shellcheck disable=SC2086
      run "cpu=$cpu $sel" QEMU_CPU="$cpu" "${ct[@]}" $sel
    done
  fi
  # The reference path under emulation too (the kernels crate alone: cheap).
  run "cpu=$cpu LLQ_KERNELS=scalar ${kernels[*]}" QEMU_CPU="$cpu" LLQ_KERNELS=scalar \
    "${ct[@]}" "${kernels[@]}"
  want=$(expect_tables "$cpu")
  if [ -n "$want" ]; then
    got=$(QEMU_CPU="$cpu" "${ct[@]}" -q -p llq-kernels --test suite -- --exact --nocapture \
      dot::kernels::simd_equals_scalar_on_encoded_rows 2>/dev/null | sed -n 's/^tables run: //p')
    if [ "$got" = "$want" ]; then
      log "ok: cpu=$cpu runs the tables $got"
    else
      log "FAILED: cpu=$cpu ran the tables ${got:-(none)}, expected $want"
      status=1
    fi
  fi
done
log "tests: $((SECONDS - t1)) s; total $((SECONDS - t0)) s; status $status"
exit "$status"
