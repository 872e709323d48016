#!/usr/bin/env bash
# Signing and attesting N artifacts: gantry's sign step (a .sig and a Sigstore bundle per
# artifact, the step's link, provenance, SHA256SUMS, the run-log record) against openssl
# signing each file by hand, on this machine in one run. Prints markdown tables.
#   N     artifacts (default 1000), 64 KiB each
#   RUNS  hyperfine runs per command (default 5)
#   DIR   where the workspace goes (default /tmp; /dev/shm leaves out ext4's inode allocator,
#         which after the deletions between runs costs about 1 ms per created file here)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000} RUNS=${RUNS:-5} DIR=${DIR:-/tmp}
for tool in hyperfine openssl; do
  command -v "$tool" >/dev/null || { echo "error: install $tool" >&2; exit 1; }
done
cargo build --release --locked -q
gantry=$PWD/target/release/gantry
work=$(mktemp -d "$DIR/gantry-sign-bench.XXXXXX")
export HOME=$work/home COSIGN_PASSWORD=bench
mkdir -p "$HOME" "$work/ws/files"
cd "$work/ws"
"$gantry" keys generate --output-dir keys 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out keys/openssl.pem
python3 - "$N" <<'PY'
import os, sys
n = int(sys.argv[1])
names = []
for i in range(n):
    name = f"files/a{i:05d}.bin"
    with open(name, "wb") as f:
        f.write(os.urandom(65536))
    names.append(name)
with open("pipeline.toml", "w") as f:
    f.write('[pipeline]\nname = "sign-bench"\nroot = "."\n\n[steps.sign]\nkind = "sign"\nkey = "keys/cosign.key"\n')
    f.write("inputs = [\n" + "".join(f'  "{n}",\n' for n in names) + "]\n")
PY
echo "# gantry $(cd - >/dev/null && git rev-parse --short HEAD 2>/dev/null || echo '?'), $(openssl version | cut -d' ' -f1-2), $(nproc) cores, $N artifacts of 64 KiB, $(df -T "$work" | awk 'NR==2 {print $2}')"
clean="rm -rf .gantry attestations files/*.sig files/*.sigstore.json files/*.der"
hyperfine --runs "$RUNS" --style basic --export-markdown "$work/sign.md" \
  --prepare "$clean" \
  -n "gantry run (sign step: .sig + bundle each; link, provenance, log)" "$gantry run pipeline.toml --json >/dev/null" \
  --prepare "$clean" \
  -n "gantry run --bundles (also every attestation as a bundle)" "$gantry run pipeline.toml --bundles --json >/dev/null" \
  --prepare "$clean" \
  -n "openssl dgst -sign, one process per file (signature only)" \
  "for f in files/*.bin; do openssl dgst -sha256 -sign keys/openssl.pem -out \$f.der \$f; done" >/dev/null
cat "$work/sign.md"
"$gantry" run pipeline.toml --json >/dev/null
echo
hyperfine --warmup 1 --runs "$RUNS" --style basic --export-markdown "$work/noop.md" \
  -n "gantry run, nothing changed (signatures from the cache)" "$gantry run pipeline.toml --json >/dev/null" >/dev/null
cat "$work/noop.md"
rm -rf "$work"
