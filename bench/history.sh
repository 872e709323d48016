#!/usr/bin/env bash
# What per-step SOURCE_DATE_EPOCH (git::last_change) and the host-system identity
# (exec::host) cost, on real histories: a clone of a public repository with one step per
# tracked source file (`cat FILE > out/N`), committed, then hyperfine of the no-op run with
# gantry at BEFORE (HEAD's time for every step, no host identity) and the work tree, and of
# the first run after a new commit, when the history is walked (the step results all cached).
#   REPOS       git repositories or URLs to clone (default: zlib and hexyl from /work/.mirror)
#   BEFORE      git revision to compare with (required);  BEFORE_BIN  its release binary
#   RUNS        hyperfine runs (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${BEFORE:?set BEFORE to a git revision} RUNS=${RUNS:-20}
REPOS=${REPOS:-"/work/.mirror/madler+zlib/repo /work/.mirror/sharkdp+hexyl/repo"}
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
work=$(mktemp -d /tmp/gantry-history.XXXXXX)
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
export HOME=$work/home GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.org
mkdir -p "$HOME"
echo "# before $(git rev-parse --short "$BEFORE"), after $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'), $(nproc) cores, $(uname -r)"
for repo in $REPOS; do
  name=$(basename "$(dirname "$repo")")
  # One clone per binary: their action keys differ, and sharing a cache would have each
  # binary's run find the other's index.
  for side in before after; do
  clone=$work/$name-$side
  git clone -q "$repo" "$clone"
  (
    cd "$clone"
    printf '[pipeline]\nname = "history"\n' > pipeline.toml
    n=0
    git ls-files | grep -v '^pipeline.toml$' | grep -v '"' | grep -v ' ' | while read -r file; do
      [ -f "$file" ] || continue
      n=$((n + 1))
      printf '\n[steps.s%d]\nrun = "cat %s > out/s%d"\ninputs = ["%s"]\noutputs = ["out/s%d"]\n' "$n" "$file" "$n" "$file" "$n" >> pipeline.toml
    done
    printf '/out/\n/.gantry/\n/attestations/\n' >> .gitignore
    git add pipeline.toml .gitignore && git commit -q -m "a pipeline"
    binary=$before; [ "$side" = after ] && binary=$after
    "$binary" run pipeline.toml --json >/dev/null
  )
  done
  steps=$(grep -c '^\[steps' "$work/$name-after/pipeline.toml")
  echo; echo "## $name: $(git -C "$work/$name-after" rev-list --count HEAD) commits, $steps steps (one per tracked file)"
  # One --prepare per command: a single one would run before every command's runs.
  hyperfine --warmup 2 --runs "$RUNS" --style basic --export-markdown "$work/$name-noop.md" \
    --prepare true --prepare true --prepare "rm -rf $work/$name-after/.gantry/last-change" \
    -n "no-op, before" "cd $work/$name-before && $before run pipeline.toml --json >/dev/null" \
    -n "no-op, after" "cd $work/$name-after && $after run pipeline.toml --json >/dev/null" \
    -n "no-op, after, history walked (no kept walk)" "cd $work/$name-after && $after run pipeline.toml --json >/dev/null" >/dev/null
  cat "$work/$name-noop.md"
  executed() { (cd "$work/$name-$1" && { echo "README touch" >> README.md 2>/dev/null || echo x > NEWFILE; } && git add -A && git commit -q -m "docs: touch" && "$2" run pipeline.toml --json | sed -n 's/.*"event":"run_finished".*"executed":\([0-9]*\).*/\1/p'); }
  echo; echo "after a commit that adds or changes README.md: before $(executed before "$before") step(s) executed, after $(executed after "$after")"
done
