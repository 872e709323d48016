# SPDX-License-Identifier: Apache-2.0
# JUnit XML for the example's shell test runners (sourced): the schema pytest, Surefire and
# cargo-nextest write, one <testcase> per test, a <failure> for each failing one.

junit_cases=""
junit_tests=0
junit_failures=0
junit_seconds=0

junit_now() {
    date +%s%N
}

# junit_escape TEXT: TEXT as XML attribute and character data.
junit_escape() {
    printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' | tr '\n' ' '
}

# junit_case CLASS NAME START_NS END_NS [FAILURE]: records one test.
junit_case() {
    seconds=$(awk -v a="$3" -v b="$4" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')
    junit_tests=$((junit_tests + 1))
    junit_seconds=$(awk -v a="$junit_seconds" -v b="$seconds" 'BEGIN { printf "%.6f", a + b }')
    line="    <testcase classname=\"$1\" name=\"$2\" time=\"$seconds\""
    if [ $# -ge 5 ]; then
        junit_failures=$((junit_failures + 1))
        message=$(junit_escape "$5")
        line="$line><failure message=\"$message\">$message</failure></testcase>"
    else
        line="$line/>"
    fi
    junit_cases="$junit_cases$line
"
}

# junit_write FILE SUITE: the report, written whole (temporary file, then renamed).
junit_write() {
    {
        echo '<?xml version="1.0" encoding="UTF-8"?>'
        counts="tests=\"$junit_tests\" failures=\"$junit_failures\" errors=\"0\""
        echo "<testsuites name=\"$2\" $counts time=\"$junit_seconds\">"
        echo "  <testsuite name=\"$2\" $counts skipped=\"0\" time=\"$junit_seconds\">"
        printf '%s' "$junit_cases"
        echo '  </testsuite>'
        echo '</testsuites>'
    } >"$1.tmp"
    mv "$1.tmp" "$1"
}
