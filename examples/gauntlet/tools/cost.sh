#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/cost.sh LOAD PACKAGE PRICES OUT: the monthly cost of running the release
# candidate at the expected traffic: the CPU time per request the load test measured, and
# the artifact stored once per replica, at PRICES, as JSON metrics.
set -eu
load=$1
package=$2
prices=$3
out=$4
bytes=$(wc -c <"$package")
awk -v bytes="$bytes" '
    FILENAME == ARGV[1] && /^[a-z_]+ / { price[$1] = $2; next }
    /"requests":/ { gsub(/[^0-9.]/, "", $2); requests = $2 }
    /"cpu_seconds":/ { gsub(/[^0-9.]/, "", $2); cpu = $2 }
    END {
        per_request = cpu / requests
        compute = per_request * price["requests_per_month"] * price["cpu_second_usd"]
        storage = bytes * price["replicas"] / 1e9 * price["storage_gb_month_usd"]
        printf "{\n  \"cpu_seconds_per_request\": %.6f,\n  \"artifact_bytes\": %d,\n", per_request, bytes
        printf "  \"compute_usd\": %.4f,\n  \"storage_usd\": %.6f,\n  \"monthly_usd\": %.4f\n}\n", \
            compute, storage, compute + storage
    }
' "$prices" "$load" >"$out.tmp"
mv "$out.tmp" "$out"
echo "cost: $(sed -n 's/.*"monthly_usd": \([0-9.]*\).*/\1/p' "$out") USD a month"
