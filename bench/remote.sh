#!/usr/bin/env bash
# A 1,000-step pipeline run locally and on a private BuildGrid 0.9.1 with one and with two
# `gantry worker`s, all on this machine, side by side with hyperfine. Each timed run salts its
# actions (`--param salt=...`, which every command's environment carries) so that the remote
# action cache cannot answer; the last row runs unsalted twice and times the second, answered
# from the remote action cache with an empty local cache. docs/PERFORMANCE.md records it.
#   N     steps (default 1000)
#   SHAPE wide | chain (default wide)
#   RUNS  hyperfine runs per command (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
N=${N:-1000} SHAPE=${SHAPE:-wide} RUNS=${RUNS:-3}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
work=$(mktemp -d /tmp/gantry-remote-bench.XXXXXX)
export HOME=$work/home
mkdir -p "$HOME"
workers=()
cleanup() {
  for pid in "${workers[@]}"; do kill "$pid" 2>/dev/null || true; done
  bash "$repo/scripts/buildgrid.sh" stop "$work/grid" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
bash scripts/buildgrid.sh start "$work/grid" >/dev/null
. "$work/grid/env"
python3 bench/generate.py "$SHAPE" "$N" "$work/p"
cd "$work/p"
echo "# gantry $(git -C "$OLDPWD" rev-parse --short HEAD), $SHAPE $N steps, $(nproc) cores, $(uname -r), BuildGrid 0.9.1"

start_worker() { # name concurrency
  "$gantry" worker --server "$BUILDGRID_URL" --name "$1" --concurrency "$2" --dir "$work/workers" --json >"$work/$1.jsonl" 2>&1 &
  workers+=($!)
  until grep -q connected "$work/$1.jsonl" 2>/dev/null; do sleep 0.1; done
}
stop_workers() {
  for pid in "${workers[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  workers=()
}
clean="rm -rf out .gantry attestations"
salted() { echo "$gantry run pipeline.toml --json --param salt=\$(date +%s%N) $*"; }

hyperfine --runs "$RUNS" --style basic --export-markdown "$work/local.md" --prepare "$clean" \
  -n "local, --jobs 2" "$(salted --jobs 2) >/dev/null" >/dev/null
start_worker w1 2
hyperfine --runs "$RUNS" --style basic --export-markdown "$work/one.md" --prepare "$clean" \
  -n "remote, 1 worker x2, --jobs 4" "$(salted --jobs 4 --remote "$BUILDGRID_URL") >/dev/null" >/dev/null
start_worker w2 2
hyperfine --runs "$RUNS" --style basic --export-markdown "$work/two.md" --prepare "$clean" \
  -n "remote, 2 workers x2, --jobs 4" "$(salted --jobs 4 --remote "$BUILDGRID_URL") >/dev/null" >/dev/null
$clean && "$gantry" run pipeline.toml --json --jobs 4 --remote "$BUILDGRID_URL" >/dev/null
hyperfine --runs "$RUNS" --style basic --export-markdown "$work/cached.md" --prepare "$clean" \
  -n "remote action cache hits, --jobs 4" "$gantry run pipeline.toml --json --jobs 4 --remote $BUILDGRID_URL >/dev/null" >/dev/null
stop_workers
leases=$(cat "$work"/w*.jsonl | grep -c '"started"' || true)
cat "$work/local.md"; tail -n1 "$work/one.md"; tail -n1 "$work/two.md"; tail -n1 "$work/cached.md"
echo; echo "leases run by the workers: $leases"
for name in w1 w2; do echo "$name: $(grep -c '"started"' "$work/$name.jsonl" || true) leases"; done
