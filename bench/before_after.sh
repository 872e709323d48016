#!/usr/bin/env bash
# gantry at another revision (BEFORE, default: the parent of the first commit of issue 28's
# hardening) against the work tree, side by side with hyperfine on the same generated work in
# one run: the full build and the no-op of N trivial sandboxed steps, a single-step run for
# the sandbox's fixed cost, and `gantry verify` of one 1,000-step chain's attestations (made
# by the work tree, read by both). Prints markdown tables; docs/PERFORMANCE.md records results.
#   BEFORE      git revision to compare with
#   BEFORE_BIN  an already built release binary of BEFORE (skips building it)
#   N       independent trivial steps (default 5000)
#   RUNS    hyperfine runs of the full build (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${BEFORE:?set BEFORE to a git revision} N=${N:-5000} RUNS=${RUNS:-5}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
work=$(mktemp -d /tmp/gantry-before-after.XXXXXX)
trap 'git worktree remove --force "$work/tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
if [ -n "${BEFORE_BIN:-}" ]; then
  before=$BEFORE_BIN
else
  git worktree add --detach -q "$work/tree" "$BEFORE"
  cargo build --release --locked -q --manifest-path "$work/tree/Cargo.toml" --target-dir "$work/target"
  before=$work/target/release/gantry
fi
cargo build --release --locked -q
after=$PWD/target/release/gantry
export HOME=$work/home
mkdir -p "$HOME"
echo "# before $(git rev-parse --short "$BEFORE"), after $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), $(nproc) cores, $(uname -r), uid $(id -u)"

for side in before after; do
  python3 bench/generate.py wide "$N" "$work/$side"
done
echo; echo "## $N steps, full build (--jobs 2)"
hyperfine --runs "$RUNS" --style basic --export-markdown "$work/full.md" \
  --prepare "rm -rf $work/before/out $work/before/.gantry $work/before/attestations" \
  -n before "cd $work/before && $before run pipeline.toml --jobs 2 --json >/dev/null" \
  --prepare "rm -rf $work/after/out $work/after/.gantry $work/after/attestations" \
  -n after "cd $work/after && $after run pipeline.toml --jobs 2 --json >/dev/null" >/dev/null
cat "$work/full.md"
echo; echo "## $N steps, no-op"
hyperfine --warmup 2 --runs 20 --style basic --export-markdown "$work/noop.md" \
  -n before "cd $work/before && $before run pipeline.toml --jobs 2 --json >/dev/null" \
  -n after "cd $work/after && $after run pipeline.toml --jobs 2 --json >/dev/null" >/dev/null
cat "$work/noop.md"
echo; echo "## 200 steps one at a time (--jobs 1): the sandbox's cost per step"
for side in before after; do
  python3 bench/generate.py wide 200 "$work/$side-200"
done
hyperfine --runs 10 --style basic --export-markdown "$work/serial.md" \
  --prepare "rm -rf $work/before-200/out $work/before-200/.gantry $work/before-200/attestations" \
  -n before "cd $work/before-200 && $before run pipeline.toml --jobs 1 --json >/dev/null" \
  --prepare "rm -rf $work/after-200/out $work/after-200/.gantry $work/after-200/attestations" \
  -n after "cd $work/after-200 && $after run pipeline.toml --jobs 1 --json >/dev/null" >/dev/null
cat "$work/serial.md"
echo; echo "## gantry verify of a 1000-step chain (the after run's attestations)"
python3 bench/generate.py chain 1000 "$work/chain"
(cd "$work/chain" && "$after" run pipeline.toml --jobs 2 --json >/dev/null)
run=$(ls -d "$work/chain"/attestations/*/ | head -1)
"$after" keys public >"$work/dev.pub"
steps=$(python3 -c "print(', '.join(f'\"s{i}\"' for i in range(1000)))")
cat >"$work/chain/policy.toml" <<TOML
[policy]
name = "chain"
[[keys]]
id = "dev"
public = "$work/dev.pub"
steps = ["*"]
[require]
steps = [$steps]
provenance = true
sources = ["src/seed.txt"]
tools = ["/usr", "/usr/bin/*", "/bin/*"]
TOML
for binary in "$before" "$after"; do
  "$binary" verify --policy "$work/chain/policy.toml" --attestations "$run" "$work/chain/out/s999" >/dev/null
done
hyperfine -N --warmup 2 --runs 20 --style basic --export-markdown "$work/verify.md" \
  -n before "$before verify --policy $work/chain/policy.toml --attestations $run $work/chain/out/s999" \
  -n after "$after verify --policy $work/chain/policy.toml --attestations $run $work/chain/out/s999" >/dev/null
cat "$work/verify.md"
# Instructions, not seconds: repeatable whatever else the machine is doing.
if command -v valgrind >/dev/null; then
  for side in before after; do
    binary=$before; [ "$side" = after ] && binary=$after
    refs=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" verify --policy "$work/chain/policy.toml" --attestations "$run" "$work/chain/out/s999" 2>&1 >/dev/null | awk '/Collected/ {print $NF}')
    echo "$side: $refs instructions (callgrind)"
  done
fi
