#!/usr/bin/env bash
# Issue 34's targets, side by side with ninja in one run on this machine (docs/PERFORMANCE.md):
# the no-op of N trivial steps, the same after HISTORY accumulated runs, the bytes a no-op run
# writes before and after them, the no-op and memory at BIG steps, and the full build.
#   GANTRY  the binary (default: target/release/gantry, built)
#   N (5000), HISTORY (100), BIG (50000), RUNS (30 no-op runs each), FULL_RUNS (3)
#   WORK_ROOT  where the work goes (default /tmp: ext4 here)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000} HISTORY=${HISTORY:-100} BIG=${BIG:-50000} RUNS=${RUNS:-30} FULL_RUNS=${FULL_RUNS:-3}
for tool in ninja hyperfine strace python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install ninja-build hyperfine strace)" >&2; exit 1; }
done
if [ -z "${GANTRY:-}" ]; then cargo build --release --locked -q; GANTRY=$PWD/target/release/gantry; fi
work=$(mktemp -d "${WORK_ROOT:-/tmp}/gantry-records.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HOME=$work/home
mkdir -p "$HOME"
echo "# gantry $(git rev-parse --short HEAD 2>/dev/null || echo '?'), ninja $(ninja --version), $(nproc) cores, $(df -T "$work" | awk 'NR==2 {print $2}')"

# The wide workload plus one step that reads a source, which the accumulated runs change.
generate() { # folder steps
  python3 bench/generate.py wide "$2" "$1" >/dev/null
  printf '[steps.stamp]\nrun = "cp src/seed.txt out/stamp"\ninputs = ["src/seed.txt"]\noutputs = ["out/stamp"]\n' >>"$1/pipeline.toml"
  printf 'build out/stamp: sh src/seed.txt\n  cmd = cp src/seed.txt out/stamp\n' >>"$1/build.ninja"
}
median_ms() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; print(' | '.join('%.1f ms' % (x['median']*1000) for x in r))" "$1"; }
noop() { # label
  # A settled record names only files that changed more than a second before the run that
  # wrote it started (file times come from a coarse clock): the first warm-up run writes it.
  sleep 1.1
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/noop.json" \
    "$GANTRY run $work/g/pipeline.toml --jobs 2" "ninja -C $work/n -j2" >/dev/null
  echo "| $1 | $(median_ms "$work/noop.json") |"
  # The same no-op planning every step (no settled record): what the run that writes it costs.
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/planned.json" \
    --prepare "sh -c 'rm -f $work/g/.gantry/index/*.settled'" "$GANTRY run $work/g/pipeline.toml --jobs 2" >/dev/null
  echo "| $1, every step planned (no settled record) | $(median_ms "$work/planned.json") | |"
}
written() { # bytes the write system calls of one no-op run wrote
  strace -f -qq -e trace=write,pwrite64,writev -o "$work/strace.txt" "$GANTRY" run "$work/g/pipeline.toml" --jobs 2 >/dev/null 2>&1
  python3 -c "
import re, sys
print(sum(int(m.group(1)) for m in re.finditer(r'= (\d+)\$', open(sys.argv[1]).read(), re.M)))" "$work/strace.txt"
}

generate "$work/g" "$N"
generate "$work/n" "$N"
"$GANTRY" run "$work/g/pipeline.toml" --jobs 2 >/dev/null 2>&1
ninja -C "$work/n" -j2 >/dev/null
"$GANTRY" run "$work/g/pipeline.toml" --jobs 2 >/dev/null 2>&1
echo; echo "| no-op, $N steps, medians | gantry | ninja |"; echo "|---|---:|---:|"
noop "fresh workspace"
before=$(written)
for i in $(seq 1 "$HISTORY"); do
  echo "$i" >"$work/g/src/seed.txt"
  "$GANTRY" run "$work/g/pipeline.toml" --jobs 2 >/dev/null 2>&1
done
"$GANTRY" run "$work/g/pipeline.toml" --jobs 2 >/dev/null 2>&1
noop "after $HISTORY accumulated runs"
after=$(written)
echo; echo "bytes written by a no-op run: $before before the $HISTORY runs, $after after"
echo "attestations folder after them: $(du -sh "$work/g/attestations" | cut -f1), $(ls "$work/g/attestations" | wc -l) entries"

echo; echo "| full build, $N steps, medians of $FULL_RUNS | gantry | ninja |"; echo "|---|---:|---:|"
hyperfine -N --runs "$FULL_RUNS" --export-json "$work/full.json" \
  --prepare "rm -rf $work/g/out $work/g/.gantry $work/g/attestations" "$GANTRY run $work/g/pipeline.toml --jobs 2" \
  --prepare "rm -rf $work/n/out $work/n/.ninja_log $work/n/.ninja_deps" "ninja -C $work/n -j2" >/dev/null
echo "| ext4 | $(median_ms "$work/full.json") |"

[ "$BIG" -gt 0 ] || exit 0
echo; echo "## $BIG steps"
generate "$work/big" "$BIG"
/usr/bin/time -f "full run: %e s, max RSS %M KB" "$GANTRY" run "$work/big/pipeline.toml" --jobs 2 2>&1 >/dev/null | tail -1
/usr/bin/time -f "first no-op: %e s, max RSS %M KB" "$GANTRY" run "$work/big/pipeline.toml" --jobs 2 2>&1 >/dev/null | tail -1
sleep 1.1
rm -f "$work"/big/.gantry/index/*.settled
/usr/bin/time -f "no-op planning every step (writes the settled record): %e s, max RSS %M KB" "$GANTRY" run "$work/big/pipeline.toml" --jobs 2 2>&1 >/dev/null | tail -1
for _ in 1 2 3; do
  /usr/bin/time -f "no-op: %e s, max RSS %M KB" "$GANTRY" run "$work/big/pipeline.toml" --jobs 2 2>&1 >/dev/null | tail -1
done
