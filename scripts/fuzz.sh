#!/usr/bin/env bash
# Runs the libFuzzer targets for a given time each (default 60 s). Targets: engine (the
# whole capture engine, seeded from ../shared/corpora/pcap and samples/), report (a whole
# analyze run to every output file, same seeds), dns, http, tls,
# quic (the parsers alone), rulepack (the YAML rule loader, seeded with rules/), rules
# (the default packs over the input, whole and streamed), strace (host-log parser and model,
# seeded from ../shared/corpora/logs/strace), hostlogs (netfilter, ss/lsof, Sysmon XML,
# auditd readers), capture (the pcap/pcapng/xz/gzip readers alone), decode (link, IP,
# transport and tunnel decoders on one frame), reassembly (defragmentation and TCP
# reassembly with offsets and flags from the input), sbom (SBOM readers and
# the package index), joined (a capture, a host log and an SBOM through a whole analyze:
# attribution, callouts, the host-log report; seeded with samples/ and corpus pairs), knowledge (the knowledge-base, executables-table and baseline YAML
# loaders), verify (`verify` over a manifest.json from the input); "all" runs them one
# after another. Corpora grow in
# fuzz-corpus/TARGET, crashes land in fuzz-crashes/ (replay one with
# `swift run phonehome-fuzz FILE` and PHONEHOME_FUZZ_TARGET set).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET|all]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
which=${2:-all}
# Coverage + ASan on the Swift code (and ASan on the C run search), linked against
# libFuzzer's no-main library: SwiftPM owns the executable's entry point, which calls
# LLVMFuzzerRunDriver itself.
runtime=$(dirname "$(readlink -f "$(command -v swift)")")/../lib/clang
fuzzer_lib=$(find "$runtime" -name 'libclang_rt.fuzzer_no_main-x86_64.a' | head -1)
# Optimised (bounds and overflow checks stay on in Swift's release mode): a debug build
# under ASan ran some hostile inputs 15x slower and libFuzzer took them for hangs.
swift build -c release --product phonehome-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
    -Xswiftc -DFUZZING -Xcc -fsanitize=address -Xlinker "$fuzzer_lib" -Xlinker -lstdc++
mkdir -p fuzz-crashes
seed_parsers() { # a few well-formed messages, so the parser targets start past the basics
    local d=fuzz-corpus/$1; mkdir -p "$d"
    case $1 in
    rules) # a few positives of the default packs
        printf 'xPOST /a HTTP/1.1\r\n\r\n{"mail":"jane.doe@corp-mail.net","card":"4111 1111 1111 1111","k":"AKIAIOSFODNN7EXAMPLE"}' > "$d/seed-pii" ;;
    http)
        printf 'xGET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' > "$d/seed-request"
        printf 'xHTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Encoding: gzip\r\n\r\nhello' > "$d/seed-response" ;;
    dns)   # query and answer for example.com A, with a compression pointer
        printf '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01' > "$d/seed-query"
        printf '\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x5d\xb8\xd8\x22' > "$d/seed-answer" ;;
    esac
}
run() {
    local target=$1; shift
    mkdir -p "fuzz-corpus/$target"
    echo "== $target: $seconds s"
    PHONEHOME_FUZZ_TARGET=$target .build-fuzz/release/phonehome-fuzz "fuzz-corpus/$target" "$@" \
        -max_total_time="$seconds" -max_len="${max_len:-65536}" -rss_limit_mb=2048 -timeout=30 \
        -artifact_prefix="fuzz-crashes/$target-" -print_final_stats=1
}
# joined's seeds: two 16-bit lengths (capture, host log), the three parts, the SBOM last.
seed_joined() { # NAME CAPTURE HOST-LOG [SBOM]
    local d=fuzz-corpus/joined cap=$2 log=$3 sbom=${4:-/dev/null}
    [ -f "$cap" ] && [ -f "$log" ] || return 0
    mkdir -p "$d"
    python3 - "$d/seed-$1" "$cap" "$log" "$sbom" <<'PY'
import struct, sys
out, cap, log, sbom = sys.argv[1], *(open(p, 'rb').read() for p in sys.argv[2:])
cap, log = cap[:32768], log[:16384]
open(out, 'wb').write(struct.pack('<HH', len(cap), len(log)) + cap + log + sbom[:8192])
PY
}
for target in engine split report joined capture decode reassembly dns http tls quic rulepack rules strace hostlogs sbom knowledge verify; do
    [ "$which" = all ] || [ "$which" = "$target" ] || continue
    if [ "$target" = engine ] || [ "$target" = split ] || [ "$target" = report ]; then
        seeds=(samples)
        [ -d ../shared/corpora/pcap ] && seeds+=(../shared/corpora/pcap)
        run "$target" "${seeds[@]}"
    elif [ "$target" = joined ]; then
        c=../shared/corpora
        seed_joined workstation samples/workstation.pcap samples/workstation.strace samples/workstation.cdx.json
        seed_joined scenarioA-strace $c/pcap/generated/scenarioA.pcap $c/logs/strace/generated-scenarioA.strace.log
        seed_joined scenarioA-ss $c/pcap/generated/scenarioA.pcap $c/logs/ss_lsof/generated-scenarioA.ss-tunap.txt
        seed_joined scenarioA-lsof $c/pcap/generated/scenarioA.pcap $c/logs/ss_lsof/generated-scenarioA.lsof-i.txt
        seed_joined nft samples/workstation.pcap $c/scenarios/lab-nightly-build/ws-egress-nft.log
        seed_joined iptables samples/workstation.pcap $c/logs/iptables/crowdsec__iptables-logs__iptables-logs.log
        seed_joined audit samples/workstation.pcap $c/logs/auditd/go-libaudit__auparse__testdata__audit-ubuntu16.log
        for x in $c/logs/sysmon/*.xml; do seed_joined sysmon samples/workstation.pcap "$x"; break; done
        seed_joined procmon samples/workstation.pcap $c/logs/procmon/procmon-parser__CompressedLogfileTests32bitUTCCSV.network-rows.csv
        run joined
    elif [ "$target" = decode ] || [ "$target" = reassembly ]; then
        run "$target" samples
    elif [ "$target" = capture ]; then
        seeds=(samples)
        [ -d ../shared/corpora/pcap ] && seeds+=(../shared/corpora/pcap)
        run capture "${seeds[@]}"
    elif [ "$target" = rulepack ]; then
        run rulepack rules
    elif [ "$target" = knowledge ]; then
        run knowledge rules/endpoints rules/executables
    elif [ "$target" = sbom ]; then
        seeds=(samples)
        [ -d ../shared/corpora/sbom ] && seeds+=(../shared/corpora/sbom)
        max_len=262144 run sbom "${seeds[@]}"
    elif [ "$target" = verify ]; then
        # A manifest of the shape a run writes (outputs, inputs, evidence files).
        mkdir -p fuzz-corpus/verify
        printf '%s' '{"tool":{"name":"phonehome"},"inputs":[{"name":"conn.jsonl","size":3,"sha256":"ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"},{"name":"x.pcap","skipped":"unreadable","sha256":""}],"evidence_files":[{"name":"a.strace","kind":"strace","size":1,"sha256":"00"}],"outputs":{"conn.jsonl":{"lines":1,"size":3,"sha256":"ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"},"dns.jsonl":{"size":0,"sha256":"e3b0"}}}' > fuzz-corpus/verify/seed-manifest
        run verify
    elif [ "$target" = strace ]; then
        seeds=()
        [ -d ../shared/corpora/logs/strace ] && seeds+=(../shared/corpora/logs/strace)
        max_len=8192 run strace "${seeds[@]}"
    elif [ "$target" = hostlogs ]; then
        seeds=()
        for d in iptables ss_lsof sysmon auditd; do [ -d "../shared/corpora/logs/$d" ] && seeds+=("../shared/corpora/logs/$d"); done
        max_len=8192 run hostlogs "${seeds[@]}"
    else
        seed_parsers "$target"
        run "$target"
    fi
done
