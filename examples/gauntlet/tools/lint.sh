#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/lint.sh OUT FILE...: the example's shell linter, its findings as SARIF.
set -eu
out=$1
shift
. "$(dirname "$0")/sarif.sh"
work=$(mktemp -d)
printf '%s\t%s\t%s\n' \
    GX001 warning "backtick command substitution: use \$(...), which nests and quotes" \
    GX002 error "eval runs data as code" \
    GX003 note "line longer than 120 characters" \
    GX004 warning "a script that does not set -u lets a misspelt variable expand to nothing" \
    >"$work/rules"
# The patterns are spelt in pieces so the linter does not flag its own source.
awk -v backtick="$(printf '\140')" -v evil="ev""al" '
    /^[ \t]*#/ {
        next
    }
    {
        if (index($0, backtick)) print "GX001\twarning\t" FILENAME "\t" FNR "\tbacktick command substitution"
        if ($0 ~ ("(^|[;&|( \t])" evil "([ \t]|$)")) print "GX002\terror\t" FILENAME "\t" FNR "\t" evil " of a string"
        if (length($0) > 120) print "GX003\tnote\t" FILENAME "\t" FNR "\tline of " length($0) " characters"
    }
' "$@" >"$work/findings"
# set -u, per script: awk has no portable end-of-file hook.
for file in "$@"; do
    if head -n 1 "$file" | grep -q '^#!' && ! grep -q '^[[:space:]]*set -[a-z]*u' "$file"; then
        printf 'GX004\twarning\t%s\t1\tscript without set -u\n' "$file" >>"$work/findings"
    fi
done
sarif_write "$out" gantry-example-lint "$work/rules" "$work/findings"
echo "lint: $(wc -l <"$work/findings") findings in $# files"
