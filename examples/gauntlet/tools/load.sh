#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/load.sh PACKAGE REQUESTS OUT: REQUESTS requests (a fixed mix of operations) to the
# unpacked release candidate, one process each as the service runs them; their latency
# percentiles, error rate and CPU time as JSON metrics.
set -eu
package=$1
requests=$2
out=$3
unpacked=$(mktemp -d)
tar -xf "$package" -C "$unpacked"
i=0
while [ "$i" -lt "$requests" ]; do
    case $((i % 5)) in
    0) set -- add "$i" 17 ;;
    1) set -- mul "$i" 3 ;;
    2) set -- div "$i" 7 ;;
    3) set -- fib $((i % 25)) ;;
    *) set -- sum 1 2 3 "$i" ;;
    esac
    start=$(date +%s%N)
    if sh "$unpacked/bin/calc" "$@" >/dev/null 2>&1; then status=ok; else status=error; fi
    end=$(date +%s%N)
    echo "$(((end - start) / 1000)) $status"
    i=$((i + 1))
done >"$unpacked/samples"
# The CPU time of every request and of this harness (the children's user and system times).
times >"$unpacked/times"
cpu=$(awk 'NR == 2 {
    for (i = 1; i <= 2; i++) { split($i, t, "m"); total += t[1] * 60 + t[2] }
    print total + 0
}' "$unpacked/times")
sort -n "$unpacked/samples" | awk -v cpu="$cpu" '
    { latency[NR] = $1 / 1000; if ($2 != "ok") errors++ }
    function percentile(p,   rank) { rank = int(p * NR + 0.999999); if (rank < 1) rank = 1; return latency[rank] }
    END {
        printf "{\n  \"requests\": %d,\n  \"errors\": %d,\n  \"error_rate\": %.6f,\n", NR, errors, errors / NR
        printf "  \"latency_ms\": {\"p50\": %.3f, \"p95\": %.3f, \"p99\": %.3f, \"max\": %.3f},\n", \
            percentile(0.50), percentile(0.95), percentile(0.99), latency[NR]
        printf "  \"cpu_seconds\": %.3f\n}\n", cpu
    }
' >"$out.tmp"
mv "$out.tmp" "$out"
echo "load: $requests requests, p95 $(sed -n 's/.*"p95": \([0-9.]*\).*/\1/p' "$out") ms"
