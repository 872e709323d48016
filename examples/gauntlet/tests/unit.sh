#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bash tests/unit.sh JUNIT TRACE: calc's unit tests, as JUnit XML, with bash's execution
# trace of every line of src/calc.sh they ran (tools/lcov.sh turns it into LCOV).
set -u
junit=$1
trace=$2
here=$(dirname "$0")
. "$here/junit.sh"
# Sourced by its path from the workspace root, the path the trace and LCOV name it by.
. "${here%/tests}/src/calc.sh"

# expect EXPECTED_STATUS EXPECTED_OUTPUT COMMAND...: fails the test unless COMMAND does.
expect() {
    status=$1
    expected=$2
    shift 2
    actual=$("$@" 2>/dev/null)
    actual_status=$?
    if [ "$actual_status" != "$status" ] || [ "$actual" != "$expected" ]; then
        echo "$*: expected \"$expected\" (status $status), got \"$actual\" (status $actual_status)"
        return 1
    fi
}

test_add() { expect 0 5 calc_add 2 3 && expect 0 -1 calc_add 2 -3; }
test_sub() { expect 0 -1 calc_sub 2 3; }
test_mul() { expect 0 42 calc_mul 6 7 && expect 0 0 calc_mul 0 9; }
test_div() { expect 0 3 calc_div 7 2 && expect 0 -3 calc_div -7 2; }
test_div_by_zero() { expect 2 "" calc_div 1 0; }
test_clamp_low() { expect 0 0 calc_clamp -5 0 10; }
test_clamp_high() { expect 0 10 calc_clamp 50 0 10; }
test_clamp_inside() { expect 0 7 calc_clamp 7 0 10; }
test_fib() { expect 0 0 calc_fib 0 && expect 0 1 calc_fib 1 && expect 0 6765 calc_fib 20; }
test_sum() { expect 0 10 calc_sum 1 2 3 4 && expect 0 0 calc_sum; }

exec 9>"$trace.tmp"
BASH_XTRACEFD=9
PS4='+${BASH_SOURCE}:${LINENO}: '
for name in $(declare -F | awk '$3 ~ /^test_/ { print $3 }'); do
    start=$(junit_now)
    set -x
    failure=$("$name")
    status=$?
    set +x
    end=$(junit_now)
    if [ "$status" -eq 0 ]; then
        junit_case calc.unit "$name" "$start" "$end"
    else
        junit_case calc.unit "$name" "$start" "$end" "$failure"
    fi
done 2>/dev/null
exec 9>&-
mv "$trace.tmp" "$trace"
junit_write "$junit" calc.unit
echo "unit: $junit_tests tests, $junit_failures failed"
