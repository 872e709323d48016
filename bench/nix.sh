#!/usr/bin/env bash
# The overhead gantry adds over calling `nix build` directly, for one Nix step: on an
# already-built derivation (no-op) and on a fresh build (a new derivation each run). Same
# machine, same run, hyperfine. docs/PERFORMANCE.md records the results.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
command -v nix >/dev/null || { echo "error: install nix-bin" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "error: install hyperfine" >&2; exit 1; }
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
work=$(mktemp -d /tmp/gantry-nix-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home NIX_CONFIG="substituters =
sandbox = false"
mkdir -p "$HOME" "$work/nix"
echo 0 > "$work/nix/nonce.txt"
cat > "$work/nix/flake.nix" <<'NIX'
{
  outputs = { self }: {
    packages.x86_64-linux.hello = derivation {
      name = "hello"; system = "x86_64-linux"; builder = "/bin/sh";
      nonce = builtins.readFile ./nonce.txt;
      args = [ "-c" "echo hello $nonce > $out" ];
    };
  };
}
NIX
cat > "$work/pipeline.toml" <<'TOML'
[pipeline]
name = "nix-bench"
root = "."
[steps.hello]
kind = "nix"
flake = "path:./nix#hello"
outputs = ["result"]
TOML
cd "$work"
nix="nix --extra-experimental-features 'nix-command flakes'"
echo "# gantry $(git -C "$OLDPWD" rev-parse --short HEAD), $(nix --version), $(nproc) cores"
echo; echo "## no-op (already built)"
"$gantry" run pipeline.toml --json >/dev/null
hyperfine -N --warmup 3 --runs "$RUNS" --style basic --export-markdown noop.md \
  -n "nix build" "$nix build --json --no-link path:$work/nix#hello" \
  -n "gantry run (1 nix step)" "$gantry run pipeline.toml --json" >/dev/null
cat noop.md
echo; echo "## fresh build (a new derivation each run)"
hyperfine --runs "$RUNS" --style basic --export-markdown fresh.md \
  --prepare "date +%s%N > $work/nix/nonce.txt" \
  -n "nix build" "$nix build --json --no-link path:$work/nix#hello" \
  --prepare "date +%s%N > $work/nix/nonce.txt" \
  -n "gantry run (1 nix step)" "$gantry run pipeline.toml --json" >/dev/null
cat fresh.md
