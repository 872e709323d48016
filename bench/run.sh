#!/usr/bin/env bash
# gantry against ninja on the same generated work, side by side with hyperfine, on this
# machine in one run. Prints markdown tables; docs/PERFORMANCE.md records the results.
#   N      independent trivial steps (default 5000)
#   CHAIN  length of the dependent chain (default 1000)
#   BIG    steps of the memory run (default 50000)
#   RUNS   hyperfine runs per command (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000} CHAIN=${CHAIN:-1000} BIG=${BIG:-50000} RUNS=${RUNS:-3}

missing=()
command -v ninja >/dev/null || missing+=(ninja-build)
command -v hyperfine >/dev/null || missing+=(hyperfine)
[ -x /usr/bin/time ] || missing+=(time)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else echo "error: install ${missing[*]}" >&2; exit 1; fi
fi
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
work=$(mktemp -d /tmp/gantry-bench.XXXXXX)
export HOME=$work/home
mkdir -p "$HOME"
echo "# gantry $(git rev-parse --short HEAD 2>/dev/null || echo '?'), ninja $(ninja --version), $(nproc) cores, $(uname -r)"

side_by_side() { # name shape count [folder]
  local name=$1 shape=$2 count=$3 work=${4:-$work}
  python3 bench/generate.py "$shape" "$count" "$work/$name-g"
  python3 bench/generate.py "$shape" "$count" "$work/$name-n"
  echo; echo "## $name: $count steps, full build"
  hyperfine --runs "$RUNS" --style basic --export-markdown "$work/$name.md" \
    --prepare "rm -rf $work/$name-g/out $work/$name-g/.gantry $work/$name-g/attestations" \
    -n "gantry --jobs 2" "cd $work/$name-g && $gantry run pipeline.toml --jobs 2 --json >/dev/null" \
    --prepare "rm -rf $work/$name-n/out $work/$name-n/.ninja_log $work/$name-n/.ninja_deps" \
    -n "ninja -j2 (no sandbox, no attestations)" "cd $work/$name-n && ninja -j2 >/dev/null" >/dev/null
  cat "$work/$name.md"
  echo; echo "## $name: $count steps, no-op re-run"
  hyperfine --warmup 2 --runs 10 --style basic --export-markdown "$work/$name-noop.md" \
    -n "gantry (no-op)" "cd $work/$name-g && $gantry run pipeline.toml --jobs 2 --json >/dev/null" \
    -n "ninja (no-op)" "cd $work/$name-n && ninja -j2 >/dev/null" >/dev/null
  cat "$work/$name-noop.md"
}

side_by_side wide wide "$N"
side_by_side chain chain "$CHAIN"
# The same wide build on tmpfs: without ext4's inode allocator, which on a filesystem without a
# journal scans recently deleted inodes (the --prepare deletions feed it, more for gantry,
# which also deletes its store), only the tools' own costs remain.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  shm=$(mktemp -d /dev/shm/gantry-bench.XXXXXX)
  side_by_side wide-tmpfs wide "$N" "$shm"
  rm -rf "$shm"
fi

echo; echo "## memory: $BIG steps"
python3 bench/generate.py wide "$BIG" "$work/big"
cd "$work/big"
/usr/bin/time -f "check: %e s, max RSS %M KB" "$gantry" check pipeline.toml 2>&1 | tail -1
/usr/bin/time -f "full run: %e s, max RSS %M KB" "$gantry" run pipeline.toml --jobs 2 --json 2>&1 >/dev/null | tail -1
/usr/bin/time -f "no-op run: %e s, max RSS %M KB" "$gantry" run pipeline.toml --jobs 2 --json 2>&1 >/dev/null | tail -1
cd - >/dev/null
rm -rf "$work"
