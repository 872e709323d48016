#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/package.sh OUT: the release candidate, bin/calc and lib/calc.sh, as a tar whose
# bytes depend only on their contents (sorted, epoch mtimes, fixed owner and modes).
set -eu
out=$1
root=examples/gauntlet
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=0755 \
    --transform "s,^$root/src/calc.sh,lib/calc.sh,;s,^$root/bin/calc,bin/calc," \
    -cf "$out.tmp" "$root/bin/calc" "$root/src/calc.sh"
mv "$out.tmp" "$out"
