#!/usr/bin/env bash
# Runs the libFuzzer target over the capture engine for a given time (default 60 s),
# seeded from ../shared/corpora/pcap and samples/. Crashes land in fuzz-crashes/.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
# Coverage + ASan on the Swift code, linked against libFuzzer's no-main library: SwiftPM
# owns the executable's entry point, which calls LLVMFuzzerRunDriver itself.
runtime=$(dirname "$(readlink -f "$(command -v swift)")")/../lib/clang
fuzzer_lib=$(find "$runtime" -name 'libclang_rt.fuzzer_no_main-x86_64.a' | head -1)
swift build --product phonehome-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
    -Xswiftc -DFUZZING -Xlinker "$fuzzer_lib" -Xlinker -lstdc++
mkdir -p fuzz-corpus fuzz-crashes
seeds=(samples)
[ -d ../shared/corpora/pcap ] && seeds+=(../shared/corpora/pcap)
.build-fuzz/debug/phonehome-fuzz fuzz-corpus "${seeds[@]}" -max_total_time="$seconds" \
    -max_len=65536 -rss_limit_mb=2048 -artifact_prefix=fuzz-crashes/ -print_final_stats=1
