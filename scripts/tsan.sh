#!/usr/bin/env bash
# Runs the threaded paths of `analyze` under ThreadSanitizer and fails on any race report:
#  - the pipeline of one input (-j 2: decoding → rule scanning → sinks → output writer),
#    and of samples/ (capture, strace log and SBOM);
#  - a large strace log parsed on one thread while the model takes it on another;
#  - many inputs with 3 jobs: xz inputs decoding ahead into spill files, gzip and plain
#    ones side by side in the pool (up to 64 MiB each), an xz cut short, a missing file;
#  - the same run interrupted (SIGINT) while inputs decode ahead, at several moments;
#  - one input and the many split by flow hash (--workers 3, sinks on their own thread),
#    and that run interrupted too.
# Inputs are the public captures of ../shared/corpora/pcap (PHONEHOME_CORPORA to move it),
# compressed here into a temporary directory. The build goes to .build-tsan.
# Usage: scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
corpora=${PHONEHOME_CORPORA:-../shared/corpora}
[ -d "$corpora/pcap/zeek" ] || { echo "tsan.sh: $corpora/pcap/zeek not found" >&2; exit 2; }
swift build -c release --product phonehome --sanitize=thread --scratch-path .build-tsan
bin=$PWD/.build-tsan/release/phonehome
export PHONEHOME_RULES=${PHONEHOME_RULES:-$PWD/rules}
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The inputs: the largest corpus captures, every second one xz, every third gzip.
mkdir "$work/in"
mapfile -t largest_first < <(ls -S "$corpora"/pcap/zeek/*.pcap)
i=0
for f in "${largest_first[@]:0:24}"; do
    name=$(printf '%02d' "$i")-$(basename "$f")
    case $((i % 6)) in
        1|3|5) xz -1 -c "$f" > "$work/in/$name.xz" ;;
        2) gzip -c "$f" > "$work/in/$name.gz" ;;
        *) cp "$f" "$work/in/$name" ;;
    esac
    i=$((i + 1))
done
largest=${largest_first[0]}
# And one larger capture (the 80 largest end to end, three times: some 30 MB), plain, xz
# and gzip, so that the threads overlap for seconds, not milliseconds.
mergecap -a -F pcapng -w "$work/some.pcapng" "${largest_first[@]:0:80}"
mergecap -a -F pcapng -w "$work/in/50-big.pcapng" "$work/some.pcapng" "$work/some.pcapng" "$work/some.pcapng"
xz -1 -c "$work/in/50-big.pcapng" > "$work/in/51-big.pcapng.xz"
gzip -c "$work/in/50-big.pcapng" > "$work/in/52-big.pcapng.gz"
xz -1 -c "$work/in/50-big.pcapng" > "$work/in/53-big.pcapng.xz"
xz -1 -c "$largest" > "$work/whole.xz"
head -c 100000 "$work/whole.xz" > "$work/in/99-cut.pcap.xz"
inputs=("$work"/in/* "$work/in/missing.pcap")

races=0
check() {   # check NAME LOG
    local n
    n=$(grep -c 'WARNING: ThreadSanitizer' "$2" || true)
    echo "$1: $n race reports"
    if [ "$n" != 0 ]; then grep -A30 'WARNING: ThreadSanitizer' "$2" | head -60; races=$((races + n)); fi
}

"$bin" analyze -q -j 2 "$work/in/50-big.pcapng" -o "$work/one" > "$work/one.log" 2>&1 || true
check "one input, 2 jobs" "$work/one.log"
"$bin" analyze -q -j 2 samples --canary PHONEHOME-CANARY-7f3a9c -o "$work/samples" > "$work/samples.log" 2>&1 || true
check "samples (capture, strace, SBOM), 2 jobs" "$work/samples.log"
scenario=$corpora/scenarios/lab-nightly-build
if [ -f "$scenario/ws.strace" ]; then
    # A strace log larger than the bytes read before parsing ahead: parsed on one thread,
    # taken by the model (and the rules, for what the processes sent) on another.
    "$bin" analyze -q -j 2 "$scenario/ws.strace" "$scenario/ws.pcap" -o "$work/strace" > "$work/strace.log" 2>&1 || true
    check "a strace log parsed ahead, with its capture, 2 jobs" "$work/strace.log"
fi
"$bin" analyze -q -j 3 "${inputs[@]}" -o "$work/many" > "$work/many.log" 2>&1 || true
check "${#inputs[@]} inputs, 3 jobs" "$work/many.log"
interrupted() {   # interrupted NAME DELAY ARGS...: the run stopped by SIGINT after DELAY s
    local name=$1 delay=$2; shift 2
    "$bin" analyze -q "$@" -o "$work/$name-$delay" > "$work/$name-$delay.log" 2>&1 &
    local pid=$! status=0
    sleep "$delay"
    kill -INT "$pid" 2> /dev/null || true
    wait "$pid" || status=$?
    # 130: stopped by the signal; otherwise the run ended before it came.
    check "$name: SIGINT after ${delay} s (exit $status)" "$work/$name-$delay.log"
}
for delay in 0.1 0.3 0.6 1 1.5 2.5; do interrupted int "$delay" -j 3 "${inputs[@]}"; done
"$bin" analyze -q -j 2 --workers 3 "$work/in/50-big.pcapng" -o "$work/split" > "$work/split.log" 2>&1 || true
check "one input split across 3 workers" "$work/split.log"
"$bin" analyze -q -j 3 --workers 3 "${inputs[@]}" -o "$work/split-many" > "$work/split-many.log" 2>&1 || true
check "${#inputs[@]} inputs, 3 workers each" "$work/split-many.log"
for delay in 0.3 1.5; do interrupted split-int "$delay" -j 2 --workers 3 "${inputs[@]}"; done
[ "$races" = 0 ] || { echo "tsan.sh: $races race reports" >&2; exit 1; }
echo "tsan.sh: no race reported"
