#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/licences.sh OUT FILE...: which FILEs declare their licence (an SPDX identifier in
# their first five lines), as JSON metrics.
set -eu
out=$1
shift
for file in "$@"; do
    licence=$(head -n 5 "$file" | sed -n 's/.*SPDX-License-Identifier: *\([^ ]*\).*/\1/p' | head -n 1)
    printf '%s\t%s\n' "${licence:--}" "$file"
done | awk -F '\t' '
    { files++; if ($1 == "-") { missing++; list = list (list == "" ? "" : ", ") "\"" $2 "\"" } else count[$1]++ }
    END {
        printf "{\n  \"files\": %d,\n  \"without_licence\": %d,\n", files, missing
        printf "  \"missing\": [%s],\n  \"licences\": {", list
        separator = ""
        for (id in count) { printf "%s\"%s\": %d", separator, id, count[id]; separator = ", " }
        print "}\n}"
    }
' >"$out.tmp"
mv "$out.tmp" "$out"
echo "licences: $(sed -n 's/.*"without_licence": \([0-9]*\).*/\1/p' "$out") of $# files without one"
