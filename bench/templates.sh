#!/usr/bin/env bash
# Template resolution at scale (issue 33): a registry folder of 100 templates with 100 versions
# each (10,000), a pipeline using all 100 (`acme/tN@^1`). Measures, with hyperfine:
#   update   `gantry template update` from scratch: every index read, every range resolved, the
#            100 newest packs fetched from the registry, their statements verified, unpacked,
#            the lock written (the cache emptied before each run)
#   resolve  the same with the cache kept (resolution, verification, expansion; no copying)
#   locked   `gantry check --locked`-like: the pipeline read with its lock (pins kept)
#   python   the anchor: Python reading the 100 indexes and picking each highest ^1 version
#            (the I/O and parsing floor of the pure resolution, nothing verified)
# GANTRY (default target/release/gantry), RUNS (default 10), PYTHON (default /usr/bin/python3:
# a pyenv shim adds 100 ms of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
GANTRY=${GANTRY:-$PWD/target/release/gantry}
RUNS=${RUNS:-10}
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
DIR=$(mktemp -d /dev/shm/gantry-templates.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
export HOME=$DIR/home
mkdir -p "$HOME" "$DIR/work"
cd "$DIR/work"
for i in $(seq 0 99); do
  mkdir -p "src/t$i"
  cat > "src/t$i/template.toml" <<EOF
[template]
name = "acme/t$i"
version = "1.99.0"

[parameters.name]
type = "string"
default = "x"

[steps.write]
run = ["sh", "-c", "echo \$1 > out/t$i", "sh", "\${{ name }}"]
outputs = ["out/t$i"]
EOF
  "$GANTRY" template publish "src/t$i" --registry registry > /dev/null
done
"$GANTRY" keys public > acme.pub
python3 - <<'EOF'
import json, hashlib
for i in range(100):
    path = f"registry/index/acme/t{i}.json"
    index = json.load(open(path))
    newest = index["versions"][0]
    older = []
    for minor in range(99):
        entry = dict(newest)
        entry["version"] = f"1.{minor}.0"
        entry["sha256"] = hashlib.sha256(f"t{i}-{minor}".encode()).hexdigest()
        older.append(entry)
    index["versions"] = older + [newest]
    json.dump(index, open(path, "w"), indent=2)
print("versions:", sum(len(json.load(open(f"registry/index/acme/t{i}.json"))["versions"]) for i in range(100)))
EOF
{
  printf '[pipeline]\nname = "many"\nroot = "."\n\n[registries.acme]\nurl = "registry"\nkeys = ["acme.pub"]\n'
  for i in $(seq 0 99); do printf '\n[steps.u%d]\nuses = "acme/t%d@^1"\n' "$i" "$i"; done
} > pipeline.toml
cat > resolve.py <<'EOF'
import json
chosen = {}
for i in range(100):
    index = json.load(open(f"registry/index/acme/t{i}.json"))
    best = None
    for entry in index["versions"]:
        if entry.get("yanked"):
            continue
        version = tuple(int(part) for part in entry["version"].split("."))
        if version[0] == 1 and (best is None or version > best[0]):
            best = (version, entry["sha256"])
    chosen[f"acme/t{i}"] = best
assert len(chosen) == 100
EOF
"$GANTRY" template update pipeline.toml > /dev/null
grep -c '^\[\[template\]\]' gantry.lock
hyperfine --warmup 2 --runs "$RUNS" -N \
  --prepare 'rm -rf gantry.lock .gantry/templates' -n update "$GANTRY template update pipeline.toml" \
  --prepare 'rm -f gantry.lock' -n resolve "$GANTRY template update pipeline.toml" \
  --prepare 'true' -n locked "$GANTRY check pipeline.toml" \
  --prepare 'true' -n python "$PYTHON resolve.py"
