#!/usr/bin/env bash
# gantry's own release, built twice from its HEAD: two clones in different folders, by two
# users (root, and uid 65534 with a home and a copy of the toolchain of its own), one after
# the other, each with `gantry run pipelines/release.toml` and a signing key of its own.
# out/release/gantry and its two SBOMs must be the same bytes (the signatures differ: two keys).
# docs/reproducibility.md records a run.
#
# Needs root (setpriv), the toolchain pipelines/release.toml names in ~/.rustup, and network
# to crates.io (the vendor step). Takes two release builds of gantry (about 12 minutes on
# 2 cores).
#   GANTRY=target/debug/gantry bash bench/self_two_clones.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
gantry=$(realpath "${GANTRY:-$repo/target/debug/gantry}")
toolchain=$(sed -n 's|^rust = "~/\(.*\)"|\1|p' "$repo/pipelines/release.toml")
[ "$(id -u)" = 0 ] || { echo "run as root: the second build runs as uid 65534" >&2; exit 2; }
[ -d "$HOME/$toolchain" ] || { echo "no toolchain at ~/$toolchain" >&2; exit 2; }

work=$(mktemp -d /tmp/gantry-two-clones.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
commit=$(git -C "$repo" rev-parse HEAD)

# clone FOLDER HOME: a clone of HEAD, a home with the toolchain (hard links), a key.
clone() {
  git clone -q "$repo" "$1"
  git -C "$1" checkout -q "$commit"
  mkdir -p "$2/.rustup/toolchains" "$2/keys"
  # The toolchain may be a link into root's home, which others cannot enter: its files.
  cp -al "$(realpath "$HOME/$toolchain")" "$2/.rustup/toolchains/$(basename "$toolchain")"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2/keys/release.key" 2> /dev/null
}

first="$work/first/gantry"
second="$work/someone/else/src/gantry"
clone "$first" "$work/home-root"
clone "$second" "$work/home-nobody"
chown -R 65534:65534 "$work/someone" "$work/home-nobody/keys"
chown 65534:65534 "$work/home-nobody"

echo "commit $commit"
echo "first:  $first, as root, at $(date -u +%H:%M:%S)"
(cd "$first" && HOME="$work/home-root" GANTRY_SIGNING_KEY="$work/home-root/keys/release.key" \
  "$gantry" run pipelines/release.toml --key "$work/home-root/keys/release.key" > "$work/first.log" 2>&1) \
  || { cat "$work/first.log"; exit 1; }
echo "second: $second, as uid 65534, at $(date -u +%H:%M:%S)"
(cd "$second" && setpriv --reuid=65534 --regid=65534 --clear-groups \
  env HOME="$work/home-nobody" GANTRY_SIGNING_KEY="$work/home-nobody/keys/release.key" \
  "$gantry" run pipelines/release.toml --key "$work/home-nobody/keys/release.key" > "$work/second.log" 2>&1) \
  || { cat "$work/second.log"; exit 1; }

# What differs is kept for a closer look (readelf, diffoscope), as the work folder goes.
kept=${KEEP:-/tmp/gantry-two-clones-kept}
status=0
for file in out/release/gantry out/release/gantry.cdx.json out/release/gantry.spdx.json; do
  a=$(sha256sum < "$first/$file" | cut -d' ' -f1)
  b=$(sha256sum < "$second/$file" | cut -d' ' -f1)
  if [ "$a" = "$b" ]; then
    echo "same     $file  sha256:$a"
  else
    echo "DIFFERS  $file  $a (root)  $b (uid 65534)"
    mkdir -p "$kept/root" "$kept/nobody"
    cp "$first/$file" "$kept/root/"
    cp "$second/$file" "$kept/nobody/"
    status=1
  fi
done
[ "$status" = 0 ] || echo "kept: $kept"
exit $status
