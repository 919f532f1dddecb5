#!/usr/bin/env bash
# Instructions per malloc(64)/free pair (callgrind: exact and repeatable, unlike timings on a loaded
# machine), for each libtracer.so given, not recording and recording, beside the untraced program.
# Counts two runs (100 000 and 300 000 pairs) and divides the difference, so start-up and exit cancel.
#   benches/scripts/callgrind_hook_pair.sh NEW.so OLD.so [-- /path/to/libjemalloc.so.2]
# An allocator after `--` is preloaded after each tracer (and alone, for the untraced line).
set -euo pipefail
libs=() allocator=""
while (($#)); do
    if [[ $1 == -- ]]; then allocator=$2; break; fi
    libs+=("$1"); shift
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -fno-builtin -o "$work/malloc_loop" "$(dirname "$0")/../programs/malloc_loop.c"

# ir PRELOAD CAPTURE N: instructions of `malloc_loop time N`. valgrind.bin, not Debian's valgrind
# wrapper script: a traced shell would take the tracer out of the environment it passes on.
ir() {
    local env=()
    [[ -n $1 ]] && env+=("LD_PRELOAD=$1")
    # TRACER_FOLLOW_EXEC: valgrind's launcher loads the preload too and execs the tool.
    [[ -n $2 ]] && env+=("TRACER_OUTPUT=$work/cap-$3.bin" TRACER_FOLLOW_EXEC=1)
    env "${env[@]}" valgrind.bin --tool=callgrind --callgrind-out-file=/dev/null \
        "$work/malloc_loop" time "$3" 2>&1 >/dev/null | sed -n 's/.*Collected : //p' | tr -d ,
    rm -f "$work"/cap-*
}
per_pair() {
    local a b
    a=$(ir "$1" "$2" 100000)
    b=$(ir "$1" "$2" 300000)
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / 200000 }'
}
echo "untraced${allocator:+ ($allocator)}: $(per_pair "$allocator" "") instructions/pair"
for lib in "${libs[@]}"; do
    preload=$lib${allocator:+:$allocator}
    echo "$lib: not recording $(per_pair "$preload" "") / recording $(per_pair "$preload" 1) instructions/pair"
done
