# SPDX-License-Identifier: Apache-2.0
# calc: integer arithmetic for the gauntlet example, the library bin/calc serves.
# Shell arithmetic builtins only (v1, calc_v1.sh, forked expr for each operation); `local`
# (dash, bash, busybox) keeps the callers' variables theirs.

calc_add() {
    echo $(($1 + $2))
}

calc_sub() {
    echo $(($1 - $2))
}

calc_mul() {
    echo $(($1 * $2))
}

calc_div() {
    if [ "$2" -eq 0 ]; then
        echo "calc: division by zero" >&2
        return 2
    fi
    echo $(($1 / $2))
}

calc_clamp() {
    local value=$1
    if [ "$value" -lt "$2" ]; then
        value=$2
    elif [ "$value" -gt "$3" ]; then
        value=$3
    fi
    echo "$value"
}

calc_fib() {
    if [ "$1" -lt 0 ]; then
        echo "calc: fib of a negative number" >&2
        return 2
    fi
    local a=0 b=1 i=0 next
    while [ "$i" -lt "$1" ]; do
        next=$((a + b))
        a=$b
        b=$next
        i=$((i + 1))
    done
    echo "$a"
}

calc_sum() {
    local total=0
    while [ $# -gt 0 ]; do
        total=$((total + $1))
        shift
    done
    echo "$total"
}
