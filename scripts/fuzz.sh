#!/usr/bin/env bash
# Runs the libFuzzer target over the capture engine for a given time (default 60 s),
# seeded from ../shared/corpora/pcap and samples/. Crashes land in fuzz-crashes/.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
swift build --product phonehome-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
mkdir -p fuzz-corpus fuzz-crashes
seeds=(samples)
[ -d ../shared/corpora/pcap ] && seeds+=(../shared/corpora/pcap)
.build-fuzz/debug/phonehome-fuzz fuzz-corpus "${seeds[@]}" -max_total_time="$seconds" \
    -max_len=65536 -rss_limit_mb=2048 -artifact_prefix=fuzz-crashes/ -print_final_stats=1
