#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# sh tools/bench.sh OUT: calc's benchmarks, the current library (src/calc.sh) against the
# previous release's (src/calc_v1.sh) in the same run, samples interleaved so that a busy
# machine slows both alike. Written in criterion's layout and estimates.json schema, as
# `cargo bench -- --save-baseline v1` then `cargo bench` would leave them:
# OUT/calc/BENCH/{new,v1}/estimates.json, times in nanoseconds per iteration.
set -eu
out=$1
samples=${BENCH_SAMPLES:-7}
root=examples/gauntlet
work=$(mktemp -d)

# sample LIBRARY ITERATIONS CALL...: nanoseconds per iteration of CALL, in a fresh shell.
sample() {
    sh -c '
        . "$1"
        iterations=$2
        shift 2
        start=$(date +%s%N)
        iteration=0
        while [ "$iteration" -lt "$iterations" ]; do
            "$@" >/dev/null
            iteration=$((iteration + 1))
        done
        end=$(date +%s%N)
        echo $(((end - start) / iterations))
    ' sample "$@"
}

# estimates SAMPLES_FILE OUT_FILE: criterion's estimates.json of the samples (mean, median,
# standard deviation, each with its standard error and 95% confidence interval).
estimates() {
    sort -n "$1" | awk '
        { x[NR] = $1; sum += $1 }
        function interval(point, error) {
            return sprintf("{\"confidence_interval\":{\"confidence_level\":0.95," \
                "\"lower_bound\":%.3f,\"upper_bound\":%.3f}," \
                "\"point_estimate\":%.3f,\"standard_error\":%.3f}", \
                point - 1.96 * error, point + 1.96 * error, point, error)
        }
        END {
            mean = sum / NR
            for (i = 1; i <= NR; i++) squares += (x[i] - mean) ^ 2
            deviation = NR > 1 ? sqrt(squares / (NR - 1)) : 0
            median = NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
            error = deviation / sqrt(NR)
            printf "{\"mean\":%s,\"median\":%s,\"std_dev\":%s}\n", interval(mean, error), \
                interval(median, 1.2533 * error), interval(deviation, deviation / sqrt(2 * (NR - 1)))
        }
    ' >"$2"
}

# bench NAME ITERATIONS V1_ITERATIONS CALL...: enough iterations on each side that the
# clock's own cost (a process per reading) is noise.
bench() {
    name=$1
    iterations=$2
    v1_iterations=$3
    shift 3
    mkdir -p "$work/$name"
    : >"$work/$name/new" && : >"$work/$name/v1"
    n=0
    while [ "$n" -lt "$samples" ]; do
        sample "$root/src/calc_v1.sh" "$v1_iterations" "$@" >>"$work/$name/v1"
        sample "$root/src/calc.sh" "$iterations" "$@" >>"$work/$name/new"
        n=$((n + 1))
    done
    for side in new v1; do
        mkdir -p "$out/calc/$name/$side"
        estimates "$work/$name/$side" "$out/calc/$name/$side/estimates.json"
        id="calc/$name"
        printf '{"group_id":"calc","function_id":"%s","value_str":null,"throughput":null,%s}\n' "$name" \
            "\"full_id\":\"$id\",\"directory_name\":\"$id\",\"title\":\"$id\"" \
            >"$out/calc/$name/$side/benchmark.json"
    done
    awk -v name="$name" 'FNR == NR { new += $1; n++; next } { old += $1; m++ }
        END {
            printf "bench calc/%s: %.0f ns (v1 %.0f ns, %+.1f%%)\n", name, new / n, old / m,
                (new / n * m / old - 1) * 100
        }' \
        "$work/$name/new" "$work/$name/v1"
}

rm -rf "$out"
bench add 1000 10 calc_add 2 3
bench fib 100 2 calc_fib 15
bench sum 200 3 calc_sum 1 2 3 4 5 6 7 8 9 10
