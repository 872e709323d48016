#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tests/integration.sh PACKAGE JUNIT: the release candidate, unpacked as users get it,
# driven through its command line: answers, exit codes and error messages, as JUnit XML.
set -u
package=$1
junit=$2
. "$(dirname "$0")/junit.sh"
unpacked=$(mktemp -d)
tar -xf "$package" -C "$unpacked"

# case NAME STATUS STDOUT STDERR_PATTERN ARGS...: calc ARGS must exit STATUS, print STDOUT
# and an error matching STDERR_PATTERN (empty: no error).
case_() {
    name=$1 status=$2 expected=$3 pattern=$4
    shift 4
    start=$(junit_now)
    actual=$(sh "$unpacked/bin/calc" "$@" 2>"$unpacked/stderr")
    actual_status=$?
    end=$(junit_now)
    error=$(cat "$unpacked/stderr")
    failure=""
    if [ "$actual_status" != "$status" ]; then
        failure="calc $*: exit $actual_status, expected $status ($error)"
    elif [ "$actual" != "$expected" ]; then
        failure="calc $*: printed \"$actual\", expected \"$expected\""
    elif [ -z "$pattern" ] && [ -n "$error" ]; then
        failure="calc $*: unexpected error \"$error\""
    elif [ -n "$pattern" ] && ! printf '%s' "$error" | grep -q -- "$pattern"; then
        failure="calc $*: error \"$error\" does not say \"$pattern\""
    fi
    if [ -z "$failure" ]; then
        junit_case calc.cli "$name" "$start" "$end"
    else
        junit_case calc.cli "$name" "$start" "$end" "$failure"
    fi
}

case_ add 0 5 "" add 2 3
case_ sub 0 -4 "" sub 3 7
case_ mul 0 1000000 "" mul 1000 1000
case_ div 0 4 "" div 9 2
case_ div-by-zero 2 "" "division by zero" div 1 0
case_ clamp 0 10 "" clamp 99 0 10
case_ fib 0 832040 "" fib 30
case_ fib-negative 2 "" "negative" fib -1
case_ sum 0 55 "" sum 1 2 3 4 5 6 7 8 9 10
case_ unknown-operation 64 "" "unknown operation: pow" pow 2 8
case_ usage 64 "" "usage"

junit_write "$junit" calc.cli
echo "integration: $junit_tests tests, $junit_failures failed"
