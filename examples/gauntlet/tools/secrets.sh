#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/secrets.sh OUT FILE...: credentials committed in FILEs, as SARIF errors.
set -eu
out=$1
shift
. "$(dirname "$0")/sarif.sh"
work=$(mktemp -d)
# ID, level, description, extended regular expression. Each pattern is written so that it
# does not match itself.
cat >"$work/patterns" <<'PATTERNS'
GS001	error	a private key	-----BEGIN ([A-Z]+ )?PRIVATE KEY-----
GS002	error	an AWS access key id	(A3T[A-Z0-9]|AKIA|ASIA)[A-Z0-9]{16}
GS003	error	a GitHub token	gh[pousr]_[A-Za-z0-9]{36}
GS004	error	a password assigned in the clear	[Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd][ \t]*[:=][ \t]*["'][^"'$]{8,}["']
PATTERNS
cut -f 1-3 "$work/patterns" >"$work/rules"
: >"$work/findings"
while IFS="$(printf '\t')" read -r id level description pattern; do
    grep -nE -- "$pattern" "$@" /dev/null | while IFS=: read -r file line _; do
        printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$level" "$file" "$line" "$description" >>"$work/findings"
    done || true
done <"$work/patterns"
sarif_write "$out" gantry-example-secrets "$work/rules" "$work/findings"
echo "secrets: $(wc -l <"$work/findings") findings in $# files"
