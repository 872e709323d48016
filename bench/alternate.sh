#!/usr/bin/env bash
# Two gantry binaries run in alternation (B, A, B, A, ...) on the same generated work, so that
# a VM whose speed drifts during the measurement (this one's I/O wait does) biases neither:
# prints each one's median and mean wall time and the ratio of medians.
#   BBIN, ABIN  the binaries (before, after)
#   MODE        full (each run from scratch) or noop (default full)
#   N           trivial steps (default 200), RUNS pairs (default 10), JOBS (default 1)
#   DIR         where the work is generated (default a folder under /dev/shm: no disk waits)
#   FRESH=1     (full) each run in a new copy, nothing deleted until the end: on ext4 without
#               a journal the kernel avoids reusing inodes deleted in the last 60 s (360 s
#               while their inode table block is unwritten), scanning past each of them on
#               every file it makes, so deleting the last run's files first measures that
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BBIN:?set BBIN}" "${ABIN:?set ABIN}"
MODE=${MODE:-full} N=${N:-200} RUNS=${RUNS:-10} JOBS=${JOBS:-1}
DIR=${DIR:-$(mktemp -d /dev/shm/gantry-alternate.XXXXXX)}
trap 'rm -rf "$DIR"' EXIT
for side in B A; do python3 bench/generate.py wide "$N" "$DIR/$side" >/dev/null; done
if [ "$MODE" = noop ]; then
  (cd "$DIR/B" && "$BBIN" run pipeline.toml --jobs "$JOBS" --json >/dev/null 2>&1)
  (cd "$DIR/A" && "$ABIN" run pipeline.toml --jobs "$JOBS" --json >/dev/null 2>&1)
fi
for _ in $(seq 1 "$RUNS"); do
  for side in B A; do
    bin=$BBIN; [ "$side" = A ] && bin=$ABIN
    work=$DIR/$side
    if [ "${FRESH:-0}" = 1 ]; then
      work=$(mktemp -d "$DIR/run-$side.XXXXXX")
      cp -r "$DIR/$side/." "$work/"
    elif [ "$MODE" = full ]; then
      rm -rf "$work/out" "$work/.gantry" "$work/attestations"
    fi
    start=$(date +%s%N)
    (cd "$work" && "$bin" run pipeline.toml --jobs "$JOBS" --json >/dev/null 2>&1)
    echo "$side $(( ($(date +%s%N) - start) / 1000 ))"
  done
done | python3 -c "
import statistics, sys
times = {}
for line in sys.stdin:
    side, micros = line.split()
    times.setdefault(side, []).append(int(micros) / 1000)
for side in ('B', 'A'):
    print(side, 'median %.1f ms, mean %.1f ms, %d runs' % (statistics.median(times[side]), statistics.mean(times[side]), len(times[side])))
print('A/B (medians) %.3f' % (statistics.median(times['A']) / statistics.median(times['B'])))
"
