#!/bin/sh
# Runs the built binary once and writes what a release gate judges: smoke.sh BINARY OUT.json
set -u
binary=$1
out=$2
said=$("$binary" gantry)
status=$?
expected=0
[ "$said" = "Hello, gantry!" ] || expected=1
bytes=$(wc -c < "$binary")
printf '{"exit_code": %d, "unexpected_output": %d, "bytes": %d}\n' "$status" "$expected" "$bytes" > "$out"
