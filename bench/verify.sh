#!/usr/bin/env bash
# gantry verify against the reference in-toto-verify (PyPI in-toto 3.1) on the same chains of
# 10, 100 and 1,000 steps: each chain is run once by gantry, exported with `gantry export
# in-toto`, then both verifiers are timed side by side with hyperfine. Prints markdown;
# docs/PERFORMANCE.md records the results.
#   SIZES  chain lengths (default "10 100 1000")
#   RUNS   hyperfine runs per command (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-10 100 1000} RUNS=${RUNS:-10}
command -v hyperfine >/dev/null || { echo "error: install hyperfine" >&2; exit 1; }
intoto=$PWD/tests/oracles/sbom/.venv/bin/in-toto-verify
[ -x "$intoto" ] || { echo "error: $intoto is missing: bash scripts/test.sh installs it" >&2; exit 1; }
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
work=$(mktemp -d /tmp/gantry-verify-bench.XXXXXX)
export HOME=$work/home
mkdir -p "$HOME"
echo "# gantry $(git rev-parse --short HEAD), in-toto $("$intoto" --version 2>&1 | tail -1), $(nproc) cores"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/layout.pem" 2>/dev/null
"$gantry" keys public >"$work/dev.pub"

# The floor both verifiers share: one ECDSA P-256 verification per link.
echo "ECDSA P-256 verifications per second on one core (openssl speed): $(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/nistp256/ {print $NF}')"

for size in $SIZES; do
  folder=$work/chain-$size
  python3 bench/generate.py chain "$size" "$folder"
  (cd "$folder" && "$gantry" run pipeline.toml --jobs 2 --json >/dev/null)
  run=$(ls -d "$folder"/attestations/*/ | head -1)
  "$gantry" export in-toto --attestations "$run" --layout-key "$work/layout.pem" --out "$folder/intoto" >/dev/null
  # Every step required, as the layout requires every step.
  steps=$(python3 -c "import sys; print(', '.join(f'\"s{i}\"' for i in range(int(sys.argv[1]))))" "$size")
  cat >"$folder/policy.toml" <<TOML
[policy]
name = "chain-$size"
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
  last=out/s$((size - 1))
  # Both must accept before they are timed.
  (cd "$folder" && "$gantry" verify --policy policy.toml --attestations "$run" "$last" >/dev/null)
  (cd "$folder" && "$intoto" --layout intoto/root.layout --verification-keys intoto/layout.pub --link-dir intoto >/dev/null)
  echo; echo "## chain of $size steps ($(ls "$folder/intoto" | grep -c '\.link$') links)"
  # No shell (-N): both commands take absolute paths.
  hyperfine -N --warmup 2 --runs "$RUNS" --style basic --export-markdown "$work/$size.md" \
    -n "gantry verify" \
    "$gantry verify --policy $folder/policy.toml --attestations $run $folder/$last" \
    -n "gantry verify --every-signature" \
    "$gantry verify --every-signature --policy $folder/policy.toml --attestations $run $folder/$last" \
    -n "gantry verify, one core" \
    "taskset -c 0 $gantry verify --policy $folder/policy.toml --attestations $run $folder/$last" \
    -n "in-toto-verify" \
    "$intoto --layout $folder/intoto/root.layout --verification-keys $folder/intoto/layout.pub --link-dir $folder/intoto" >/dev/null
  cat "$work/$size.md"
done
rm -rf "$work"
