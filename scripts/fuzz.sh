#!/usr/bin/env bash
# Fuzzes phivault's parsers with cargo fuzz (libFuzzer, nightly toolchain), one target at a
# time on one core, and keeps what each run learned:
#   - new inputs that reach new code are merged into fuzz/corpus/<target>/ (minimised);
#   - an input that crashes, hangs (> 10 s) or takes more than 2 GiB is copied into
#     fuzz/regressions/<target>/, which the stable test suite replays
#     (crates/fuzzing/tests/replay.rs) once the finding is fixed;
#   - one summary line per target goes to stdout, for docs/FUZZING.md.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 600)] [TARGET ...]
# Needs: rustup's nightly toolchain and `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
all=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^phivault-fuzz$')
targets="${*:-$all}"
core="${FUZZ_CORE:-0}"

cargo +nightly fuzz build --sanitizer none >/dev/null
bin=fuzz/target/x86_64-unknown-linux-gnu/release
printf '%-15s %8s %12s %10s %8s %8s %s\n' target seconds runs exec/s cov corpus result
for t in $targets; do
  work=$(mktemp -d)
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  cp -r "fuzz/corpus/$t/." "$work/" 2>/dev/null || true
  log=$(mktemp)
  status=0
  taskset -c "$core" "$bin/$t" "$work" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
    >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  if [ "$status" = 0 ]; then
    result=clean
  else
    result="FOUND (exit $status): see $log and fuzz/artifacts/$t/"
    mkdir -p "fuzz/regressions/$t"
    for a in fuzz/artifacts/"$t"/*; do [ -f "$a" ] && cp "$a" "fuzz/regressions/$t/"; done
  fi
  # Keep only inputs that add coverage to what is committed.
  "$bin/$t" -merge=1 "fuzz/corpus/$t" "$work" >/dev/null 2>&1 || true
  printf '%-15s %8s %12s %10s %8s %8s %s\n' "$t" "$seconds" "${runs:-?}" "${speed:-?}" "${cov:-?}" \
    "$(ls "fuzz/corpus/$t" | wc -l)" "$result"
  rm -rf "$work"
  [ "$status" = 0 ] && rm -f "$log"
done
