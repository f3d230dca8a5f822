#!/usr/bin/env bash
# Run every chapter of the guided tour as a plain script with its default settings,
# print each one's wall time, and fail if any fails or takes over 120 s.
#   bash .ci/tour.sh            (from anywhere, with the project installed)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
limit=120
failed=0
work=$(mktemp -d)                       # the chapters write tour_output/ where they run
trap 'rm -rf "$work"' EXIT
for chapter in "$root"/tour/[0-9][0-9]_*.py; do
    name=${chapter#"$root"/}
    start=$(date +%s%N)
    (cd "$work" && env -u MINITRANSFORMER_TOUR_QUICK MPLBACKEND=Agg \
        timeout $((limit + 30)) python "$chapter") > "$work/log" 2>&1
    status=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '%-32s %4d.%d s  exit %d\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) "$status"
    if [ "$status" -ne 0 ]; then
        tail -n 30 "$work/log"
        failed=1
    elif [ "$ms" -gt $((limit * 1000)) ]; then
        echo "$name: took over the limit of $limit s"
        failed=1
    fi
done
exit $failed
