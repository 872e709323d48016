#!/usr/bin/env bash
# gantry usage report over RUNS signed usage documents of STEPS steps each (default 1,000 x 100
# = 100,000 step records), in JSON and HTML, beside the least a report must do in Python
# (verify every signature, add up CPU per tenant: bench/usage_baseline.py) on the same input.
# Prints markdown; docs/PERFORMANCE.md records the results.
#   RUNS (default 1000)  STEPS (default 100)  REPEAT (hyperfine runs, default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000} STEPS=${STEPS:-100} REPEAT=${REPEAT:-10}
command -v hyperfine >/dev/null || { echo "error: install hyperfine" >&2; exit 1; }
python=$PWD/tests/oracles/sbom/.venv/bin/python
[ -x "$python" ] || { echo "error: $python is missing: bash scripts/test.sh installs it" >&2; exit 1; }
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
work=$(mktemp -d /tmp/gantry-usage-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home
mkdir -p "$HOME"
echo "# gantry $(git rev-parse --short HEAD), $(nproc) cores"
"$python" bench/usage_data.py "$RUNS" "$STEPS" "$work"
report="$gantry usage report --rate-card $work/rate-card.toml --attestations $work/attestations --public-key $work/farm.pub --period 2026-11"
$report | "$python" -c 'import json,sys; r=json.load(sys.stdin); assert len(r["runs"])==int(sys.argv[1]) and not r["refused"], r["refused"][:3]; print("total", r["total"], r["currency"], "over", len(r["runs"]), "runs")' "$RUNS"
echo; echo "## $RUNS usage documents, $((RUNS * STEPS)) step records"
hyperfine -N --warmup 2 --runs "$REPEAT" --style basic --export-markdown "$work/usage.md" \
  -n "gantry usage report (json)" "$report" \
  -n "gantry usage report (html)" "$report --format html" \
  -n "python: verify and add up" "$python bench/usage_baseline.py $work/farm.pub $work/attestations" >/dev/null
cat "$work/usage.md"
