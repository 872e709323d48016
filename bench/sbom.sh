#!/usr/bin/env bash
# gantry sbom against cargo-cyclonedx (crates.io) on the same Cargo projects, side by side with
# hyperfine, and the two component sets compared. Prints markdown; docs/PERFORMANCE.md records it.
#   RUNS  hyperfine runs per command (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
command -v hyperfine >/dev/null || { echo "error: install hyperfine" >&2; exit 1; }
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
tools=$PWD/target/bench-tools
if [ ! -x "$tools/bin/cargo-cyclonedx" ]; then
  cargo install --locked --quiet --root "$tools" cargo-cyclonedx
fi
export PATH="$tools/bin:$PATH" SOURCE_DATE_EPOCH=1700000000
work=$(mktemp -d /tmp/gantry-sbom-bench.XXXXXX)
echo "# gantry $(git rev-parse --short HEAD), $(cargo cyclonedx --version 2>/dev/null || echo cargo-cyclonedx), $(nproc) cores"

# gantry's own project (a copy, so cargo-cyclonedx's output stays out of the tree), and a
# generated workspace of 1,000 path crates.
mkdir -p "$work/own"
git ls-files -z | xargs -0 cp --parents -t "$work/own"
python3 bench/cargo_workspace.py 1000 "$work/generated"
# cargo-cyclonedx --target all asks cargo metadata about every platform's crates: fetch them
# once (from crates.io), then time both tools offline.
(cd "$work/own" && cargo fetch --quiet)
export CARGO_NET_OFFLINE=true

compare() { # folder name
  local folder=$1 name=$2
  (cd "$folder" && cargo cyclonedx --format json --spec-version 1.5 --target all >/dev/null 2>&1)
  "$gantry" sbom --from "$folder/Cargo.lock" --format cyclonedx -o "$work/$name.gantry.cdx.json" >/dev/null
  python3 - "$work/$name.gantry.cdx.json" "$folder" <<'PY'
import glob, json, sys
gantry = json.load(open(sys.argv[1]))
theirs_file = sorted(glob.glob(f"{sys.argv[2]}/*.cdx.json"))[0]
theirs = json.load(open(theirs_file))
def components(bom):
    found = {(c["name"], c.get("version")) for c in bom.get("components", [])}
    root = bom["metadata"].get("component")
    # gantry's metadata component is its subject (the lock file), not a package.
    if root and not root.get("name", "").endswith("Cargo.lock"):
        found.add((root["name"], root.get("version")))
    return found
ours, other = components(gantry), components(theirs)
print(f"- gantry: {len(ours)} packages; cargo-cyclonedx: {len(other)} (with its root component)")
print(f"- only in gantry's: {len(ours - other)} {sorted(ours - other)}")
print(f"- only in cargo-cyclonedx's: {len(other - ours)} {sorted(other - ours)[:8]}")
PY
  echo
  hyperfine --warmup 2 --runs "$RUNS" --style basic --export-markdown "$work/$name.md" \
    -n "gantry sbom (CycloneDX 1.6, signed attestation)" \
    "$gantry sbom --from $folder/Cargo.lock --format cyclonedx -o $work/$name.out.json" \
    -n "cargo cyclonedx --target all (CycloneDX 1.5)" \
    "cd $folder && cargo cyclonedx --format json --spec-version 1.5 --target all" >/dev/null
  cat "$work/$name.md"
}

echo; echo "## gantry's own Cargo.lock"
compare "$work/own" own
echo; echo "## generated workspace, 1,000 crates"
compare "$work/generated" generated
rm -rf "$work"
