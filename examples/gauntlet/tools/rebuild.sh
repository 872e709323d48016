#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/rebuild.sh PACKAGE OUT: builds the release candidate again from a copy of its
# sources with other file times, umask, time zone and locale, and compares the bytes, as
# JSON metrics (differing: how many rebuilds did not reproduce PACKAGE).
set -eu
package=$1
out=$2
expected=$(sha256sum "$package" | cut -d ' ' -f 1)
differing=0
rebuilds=0
for variant in "UTC 022 197001010000" "Pacific/Kiritimati 077 203801190314" "America/St_Johns 002 200002290000"; do
    set -- $variant
    copy=$(mktemp -d)
    mkdir -p "$copy/examples/gauntlet"
    cp -R examples/gauntlet/bin examples/gauntlet/src examples/gauntlet/tools "$copy/examples/gauntlet/"
    find "$copy" -exec touch -t "$3" {} +
    actual=$(cd "$copy" && umask "$2" && TZ=$1 LC_ALL=C sh examples/gauntlet/tools/package.sh rebuilt.tar &&
        sha256sum rebuilt.tar | cut -d ' ' -f 1)
    rebuilds=$((rebuilds + 1))
    if [ "$actual" != "$expected" ]; then
        differing=$((differing + 1))
        echo "rebuild with TZ=$1 umask $2: sha256 $actual, not $expected" >&2
    fi
done
printf '{\n  "sha256": "%s",\n  "rebuilds": %d,\n  "differing": %d\n}\n' \
    "$expected" "$rebuilds" "$differing" >"$out.tmp"
mv "$out.tmp" "$out"
echo "rebuild: $((rebuilds - differing)) of $rebuilds rebuilds identical"
