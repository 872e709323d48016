#!/bin/sh
# Runs the crate's tests and writes their results as JUnit XML (stable Rust's test harness
# prints only text): junit.sh OUT.xml
set -eu
out=$1
log=$TMPDIR/test.log
status=0
# One thread: the harness prints results as they finish, and the report must not vary.
cargo test --release --locked --offline --target-dir "$TMPDIR/target" -- --test-threads=1 > "$log" 2>&1 || status=$?
awk -v status="$status" '
  /^test .* \.\.\. (ok|FAILED|ignored)$/ {
    name = $2; result = $NF; n++
    names[n] = name; results[n] = result
    if (result == "FAILED") failures++
    if (result == "ignored") skipped++
  }
  END {
    if (n == 0 && status != 0) { print "no test ran (cargo test exited " status ")" > "/dev/stderr"; exit 1 }
    printf "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    printf "<testsuites><testsuite name=\"greeter\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\">\n", n, failures, skipped
    for (i = 1; i <= n; i++) {
      printf "  <testcase classname=\"greeter\" name=\"%s\">", names[i]
      if (results[i] == "FAILED") printf "<failure message=\"failed\"/>"
      if (results[i] == "ignored") printf "<skipped/>"
      printf "</testcase>\n"
    }
    printf "</testsuite></testsuites>\n"
  }' "$log" > "$out"
