#!/usr/bin/env bash
# gantry vulns scan against cargo-audit 0.22.2 (the PyPI wheel the tests use) on the same
# input: an SBOM of COMPONENTS crates and a database of ADVISORIES RustSec advisories made from
# real ones (bench/vulns_data.py), in both of gantry's database forms. Both must report the
# same ids before they are timed. Prints markdown; docs/PERFORMANCE.md records the results.
#   ADVISORIES (default 10000)  COMPONENTS (default 1000)  RUNS (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
ADVISORIES=${ADVISORIES:-10000} COMPONENTS=${COMPONENTS:-1000} RUNS=${RUNS:-10}
command -v hyperfine >/dev/null || { echo "error: install hyperfine" >&2; exit 1; }
audit=$PWD/tests/oracles/sbom/.venv/bin/cargo-audit
[ -x "$audit" ] || { echo "error: $audit is missing: bash scripts/test.sh installs it" >&2; exit 1; }
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
work=$(mktemp -d /tmp/gantry-vulns-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home
mkdir -p "$HOME"
echo "# gantry $(git rev-parse --short HEAD), $("$audit" --version), $(nproc) cores"
python3 bench/vulns_data.py "$ADVISORIES" "$COMPONENTS" "$work"
"$gantry" sbom --from "$work/Cargo.lock" -o "$work/app.spdx.json" >/dev/null
# Both exit 1 when they find something: that is the point here, not a failure.
ids_gantry() { { "$gantry" vulns scan "$work/app.spdx.json" --db "$1" --json || true; } | python3 -c 'import json,sys; print(sorted(f["id"] for f in json.load(sys.stdin)["findings"]))'; }
ids_audit=$({ "$audit" audit --db "$work/rustsec" --no-fetch --no-yanked --file "$work/Cargo.lock" --json 2>/dev/null || true; } | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sorted([v["advisory"]["id"] for v in r["vulnerabilities"]["list"]] + [w["advisory"]["id"] for k in r["warnings"].values() for w in k if w.get("advisory")]))')
for db in rustsec osv; do
  [ "$(ids_gantry "$work/$db")" = "$ids_audit" ] || { echo "error: gantry ($db) and cargo-audit disagree" >&2; exit 1; }
done
echo "both report $(python3 -c "import sys; print(len(eval(sys.argv[1])))" "$ids_audit") findings"
echo; echo "## $COMPONENTS components against $ADVISORIES advisories"
hyperfine -N -i --warmup 2 --runs "$RUNS" --style basic --export-markdown "$work/vulns.md" \
  -n "gantry vulns scan (RustSec files)" "$gantry vulns scan $work/app.spdx.json --db $work/rustsec --json" \
  -n "gantry vulns scan (OSV records)" "$gantry vulns scan $work/app.spdx.json --db $work/osv --json" \
  -n "cargo-audit (RustSec files)" "$audit audit --db $work/rustsec --no-fetch --no-yanked --file $work/Cargo.lock --json" >/dev/null
cat "$work/vulns.md"
