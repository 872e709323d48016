# SPDX-License-Identifier: Apache-2.0
# calc v1, the previous release: one expr process per operation. Kept as the benchmark
# baseline (tools/bench.sh measures both in the same run, like criterion's --save-baseline).

calc_add() {
    expr "$1" + "$2"
}

calc_fib() {
    local a=0 b=1 i=0 next
    while [ "$i" -lt "$1" ]; do
        next=$(expr "$a" + "$b")
        a=$b
        b=$next
        i=$(expr "$i" + 1)
    done
    echo "$a"
}

calc_sum() {
    local total=0
    while [ $# -gt 0 ]; do
        total=$(expr "$total" + "$1")
        shift
    done
    echo "$total"
}
