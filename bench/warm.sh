#!/usr/bin/env bash
# Edit-rebuild of a real Rust project with and without a warm `target` folder (docs/pipeline.md,
# "Warm folders"), beside cargo alone on the same edits: a crate from crates.io (default hexyl,
# 68 crates in its lock), its dependencies vendored by one networked step, then the release
# build. After the first build, EDITS times a comment is appended to src/main.rs and the
# pipeline runs again; the anchor is `cargo build --release` after the same edits in a plain
# folder with the same vendored sources. Prints one markdown row per build.
#   CRATE, VERSION  the crate (default hexyl 0.16.0)    EDITS  edits (default 3)
#   JOBS  cargo's jobs (default 1, so a fuzzer on the other core touches every side alike)
# The crate is downloaded at run time; nothing of it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
CRATE=${CRATE:-hexyl} VERSION=${VERSION:-0.16.0} EDITS=${EDITS:-3} JOBS=${JOBS:-1}
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
toolchain=$(rustc --print sysroot)
work=$(mktemp -d /tmp/gantry-warm.XXXXXX)
trap 'rm -rf "$work"' EXIT
curl -sSfL "https://static.crates.io/crates/$CRATE/$CRATE-$VERSION.crate" | tar xz -C "$work"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.org
now() { date +%s%3N; }

pipeline() { # $1: warm or cold
  local target='--target-dir "$TMPDIR/target"' built='$TMPDIR/target' warm=''
  if [ "$1" = warm ]; then target='' built='target' warm='warm = ["target"]'; fi
  cat <<EOF
[pipeline]
name = "$CRATE"

[tools]
rust = "$toolchain"

[defaults]
env = { LANG = "C.UTF-8", CARGO_BUILD_JOBS = "$JOBS" }
tools = ["rust"]

[steps.vendor]
run = "mkdir -p src && touch src/main.rs src/lib.rs && cargo vendor --locked --versioned-dirs out/vendor > /dev/null"
inputs = ["Cargo.toml", "Cargo.lock"]
outputs = ["out/vendor/"]
network = true

[steps.build]
run = """cargo build --release --locked --offline \\
  --config 'source.crates-io.replace-with="vendored"' --config 'source.vendored.directory="out/vendor"' $target \\
  && mkdir -p out/bin && cp "$built/release/$CRATE" out/bin/$CRATE"""
inputs = ["Cargo.toml", "Cargo.lock", "src/**", "out/vendor/"]
outputs = ["out/bin/$CRATE"]
$warm
EOF
}

# The build step's own time, from the run's events.
build_ms() { grep -o '"step":"build","status":"[a-z]*","duration_ms":[0-9]*' | grep -o '[0-9]*$'; }

echo "# $CRATE $VERSION, cargo jobs $JOBS, $(nproc) cores, gantry $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
echo
echo "| build | gantry, cold \`target\` | gantry, warm \`target\` | cargo alone |"
echo "|---|---:|---:|---:|"
declare -A times
for side in cold warm; do
  tree=$work/$side
  cp -r "$work/$CRATE-$VERSION" "$tree"
  (
    cd "$tree"
    pipeline "$side" > pipeline.toml
    git init -q && git add -A && git commit -qm import
    for edit in $(seq 0 "$EDITS"); do
      [ "$edit" = 0 ] || echo "// edit $edit" >> src/main.rs
      "$gantry" run pipeline.toml --json | build_ms > "$work/$side-$edit"
    done
  )
done
anchor=$work/anchor
cp -r "$work/$CRATE-$VERSION" "$anchor"
cp -r "$work/warm/out/vendor" "$anchor/vendor"
for edit in $(seq 0 "$EDITS"); do
  [ "$edit" = 0 ] || echo "// edit $edit" >> "$anchor/src/main.rs"
  start=$(now)
  (cd "$anchor" && CARGO_BUILD_JOBS=$JOBS cargo build --release --locked --offline -q \
    --config 'source.crates-io.replace-with="vendored"' --config 'source.vendored.directory="vendor"')
  echo $(($(now) - start)) > "$work/anchor-$edit"
done
for edit in $(seq 0 "$EDITS"); do
  name=$([ "$edit" = 0 ] && echo "first build" || echo "after edit $edit")
  awk -v name="$name" '{ s[NR] = $1 / 1000 } END { printf "| %s | %.1f s | %.1f s | %.1f s |\n", name, s[1], s[2], s[3] }' \
    "$work/cold-$edit" "$work/warm-$edit" "$work/anchor-$edit"
done
