#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh drills/rollback.sh PACKAGE: the rollback rehearsal. Installs the release candidate as
# the live release, deploys a broken release over it, sees the health check fail, and rolls
# back by switching the `current` link atomically; fails unless service is restored.
set -eu
package=$1
site=$(mktemp -d)

healthy() {
    [ "$(sh "$site/current/bin/calc" add 40 2 2>/dev/null)" = 42 ]
}

# activate RELEASE: points `current` at RELEASE in one rename, so no request sees neither.
activate() {
    ln -s "releases/$1" "$site/current.next"
    mv -T "$site/current.next" "$site/current"
}

mkdir -p "$site/releases/good" "$site/releases/bad"
tar -xf "$package" -C "$site/releases/good"
activate good
healthy || { echo "rollback drill: the candidate is not healthy before the drill" >&2; exit 1; }

# A broken release: same files, the library's addition off by one.
tar -xf "$package" -C "$site/releases/bad"
sed -i 's/echo \$((\$1 + \$2))/echo $(($1 + $2 + 1))/' "$site/releases/bad/lib/calc.sh"
activate bad
if healthy; then
    echo "rollback drill: the health check passed a broken release" >&2
    exit 1
fi

activate good
healthy || { echo "rollback drill: service not restored after the rollback" >&2; exit 1; }
echo "rollback drill: broken release detected and rolled back to $(readlink "$site/current")"
