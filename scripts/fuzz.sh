#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted bytes (docs/security.md, property 12),
# with cargo-fuzz and libFuzzer on the nightly toolchain. Each target runs for SECONDS_PER (or RUNS
# executions), two at a time, with a 2 GB memory cap and a 10 s hang limit; the corpus it
# grows is merged back into fuzz/corpus/<target> (which the test suite replays) and the
# figures (executions, coverage, crashes) are printed as a markdown table.
#   SECONDS_PER  seconds per target (default 300)    RUNS  executions per target instead (e.g. 10000000)
#   TARGETS  space-separated subset (default: every target in fuzz/Cargo.toml)
#   AT_ONCE  targets run at the same time, 1 or 2 (default 2)
#   SKIP_BUILD  use the binaries built before (another round is running with them)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_PER=${SECONDS_PER:-300}
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
targets=${TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v gantry-fuzz)}
[ -n "${SKIP_BUILD:-}" ] || cargo +nightly fuzz build --release >/dev/null
limit=(-max_total_time="$SECONDS_PER")
[ -n "${RUNS:-}" ] && limit=(-runs="$RUNS")
mkdir -p logs
# The targets run as the binaries the build made (not through `cargo fuzz run`, which would
# rebuild them whenever gantry's sources change during a long round).
bin=target/x86_64-unknown-linux-gnu/release
run() {
  local target=$1 grown merged
  grown=$(mktemp -d) merged=$(mktemp -d)
  mkdir -p "artifacts/$target"
  "$bin/$target" "$grown" "corpus/$target" "${limit[@]}" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="artifacts/$target/" >"logs/$target.log" 2>&1 || true
  # Keep the smallest set of inputs that covers what the old corpus and the run's finds cover.
  if "$bin/$target" -merge=1 "$merged" "corpus/$target" "$grown" >/dev/null 2>&1; then
    rm -rf "corpus/$target" && mv "$merged" "corpus/$target" && merged=
  fi
  rm -rf "$grown" ${merged:+"$merged"}
}
echo "| target | executions | exec/s | coverage (edges) | corpus files | crashes, hangs, OOMs |"
echo "|---|---:|---:|---:|---:|---:|"
set -- $targets
while (($#)); do
  run "$1" & first=$!
  pair=()
  if ((${AT_ONCE:-2} > 1 && $# > 1)); then run "$2" & second=$!; pair=("$2"); wait "$second"; fi
  wait "$first"
  for target in "$1" "${pair[@]}"; do
    log="logs/$target.log"
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    found=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
    echo "| $target | ${executions:-?} | ${speed:-?} | ${coverage:-?} | $(ls "corpus/$target" | wc -l) | $found |"
  done
  shift
  if ((${#pair[@]})); then shift; fi
done
