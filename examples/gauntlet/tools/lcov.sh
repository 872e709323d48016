#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/lcov.sh SOURCE TRACE OUT: an LCOV tracefile of SOURCE from bash's xtrace (PS4
# '+${BASH_SOURCE}:${LINENO}: '): a DA line per executable line with the times it ran, an
# FN/FNDA pair per function (how often its first line ran), and the LF/LH/FNF/FNH totals.
set -eu
source=$1
trace=$2
out=$3
awk -v source="$source" '
    FNR == NR {
        # The trace: "+++path:line: command", one "+" per nesting level.
        line = $0
        sub(/^\++/, "", line)
        colon = index(line, ":")
        if (substr(line, 1, colon - 1) != source) next
        rest = substr(line, colon + 1)
        hits[rest + 0]++
        next
    }
    {
        text = $0
        sub(/^[ \t]+/, "", text)
        if (text ~ /^[A-Za-z_][A-Za-z0-9_]*\(\) *\{$/) {
            name = text
            sub(/\(.*/, "", name)
            functions[++count] = FNR
            names[count] = name
            pending = count
            next
        }
        if (text == "" || text ~ /^#/ || text ~ /^(\}|fi|else|done|then|do|;;|esac)$/) next
        lines[++executable] = FNR
        if (pending) { first[pending] = FNR; pending = 0 }
    }
    END {
        print "TN:"
        print "SF:" source
        for (i = 1; i <= count; i++) print "FN:" functions[i] "," names[i]
        covered_functions = 0
        for (i = 1; i <= count; i++) {
            n = hits[first[i]] + 0
            print "FNDA:" n "," names[i]
            if (n > 0) covered_functions++
        }
        print "FNF:" count
        print "FNH:" covered_functions
        covered = 0
        for (i = 1; i <= executable; i++) {
            n = hits[lines[i]] + 0
            print "DA:" lines[i] "," n
            if (n > 0) covered++
        }
        print "LF:" executable
        print "LH:" covered
        print "end_of_record"
    }
' "$trace" "$source" >"$out.tmp"
mv "$out.tmp" "$out"
awk -F: '/^LF:/ { lf = $2 } /^LH:/ { lh = $2 } END { printf "coverage: %d of %d lines\n", lh, lf }' "$out"
