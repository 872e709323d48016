#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh drills/restore.sh PACKAGE: the restore drill. Builds the service's state (a ledger the
# release candidate computes), backs it up with a checksum manifest, destroys it, restores it
# from the backup and proves it whole; the gate times it against the recovery time objective.
set -eu
package=$1
site=$(mktemp -d)
tar -xf "$package" -C "$site"
mkdir -p "$site/data/ledger"
for day in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    sh "$site/bin/calc" fib "$day" >"$site/data/ledger/day-$day"
done
(cd "$site/data" && find ledger -type f | sort | xargs sha256sum >MANIFEST)
tar -C "$site/data" -czf "$site/backup.tar.gz" ledger MANIFEST

rm -rf "$site/data"
mkdir -p "$site/data"
tar -C "$site/data" -xzf "$site/backup.tar.gz"
(cd "$site/data" && sha256sum --quiet -c MANIFEST)
[ "$(cat "$site/data/ledger/day-20")" = "$(sh "$site/bin/calc" fib 20)" ]
echo "restore drill: $(wc -l <"$site/data/MANIFEST") files restored and verified"
