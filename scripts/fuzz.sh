#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted bytes (docs/security.md, property 12),
# with cargo-fuzz and libFuzzer on the nightly toolchain. Each target runs for SECONDS_PER (or RUNS
# executions), two at a time, with a 2 GB memory cap and a 10 s hang limit; the corpus it
# grows is merged back into fuzz/corpus/<target> (which the test suite replays) and the
# figures (executions, coverage, crashes) are printed as a markdown table.
#   SECONDS_PER  seconds per target (default 300)    RUNS  executions per target instead (e.g. 10000000)
#   TARGETS  space-separated subset (default: every target in fuzz/Cargo.toml)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_PER=${SECONDS_PER:-300}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
targets=${TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v gantry-fuzz)}
cargo +nightly fuzz build --release >/dev/null
limit=(-max_total_time="$SECONDS_PER")
[ -n "${RUNS:-}" ] && limit=(-runs="$RUNS")
mkdir -p logs
run() {
  local target=$1 grown
  grown=$(mktemp -d)
  cargo +nightly fuzz run --release "$target" "$grown" "corpus/$target" -- \
    "${limit[@]}" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"logs/$target.log" 2>&1 || true
  cargo +nightly fuzz cmin --release "$target" "corpus/$target" >/dev/null 2>&1 || true
  # cmin leaves the minimal set in corpus/<target>; merge what the run grew into it.
  cargo +nightly fuzz run --release "$target" "corpus/$target" "$grown" -- -merge=1 >/dev/null 2>&1 || true
  rm -rf "$grown"
}
echo "| target | executions | exec/s | coverage (edges) | corpus files | crashes, hangs, OOMs |"
echo "|---|---:|---:|---:|---:|---:|"
set -- $targets
while (($#)); do
  run "$1" & first=$!
  if (($# > 1)); then run "$2" & second=$!; wait "$second"; fi
  wait "$first"
  for target in "$1" ${2:+"$2"}; do
    log="logs/$target.log"
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    found=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
    echo "| $target | ${executions:-?} | ${speed:-?} | ${coverage:-?} | $(ls "corpus/$target" | wc -l) | $found |"
  done
  shift; (($#)) && shift
done
