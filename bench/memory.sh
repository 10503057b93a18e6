#!/usr/bin/env bash
# Benchmark (not a test): peak memory of `phonehome analyze` on captures built to fill its
# tables, stores and queues at once (bench/crafted.py, 1.45 GB, written once). Each
# capture alone, then all five in one run (in the order emails, filled, queries,
# pipelined, datagrams: the run's stores are full when the later ones come), with 1 job,
# 2 jobs and 2 workers. Then the host logs built to fill the host model, each alone (1
# job), and all four with all five captures (1 and 2 jobs). Then many inputs (links in the
# directory): 100 malformed captures, 20,000 small captures, 20,000 strace files. Then
# SBOMs: a CycloneDX near the size cap, a syft JSON listing every file, two million tiny
# components. Prints the manifest's peak (VmHWM); 300 MB is the documented cap.
# Usage: bench/memory.sh [DIRECTORY]   (default: $PHONEHOME_CRAFTED or /tmp/phonehome-crafted)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${PHONEHOME_CRAFTED:-/tmp/phonehome-crafted}}
python3 bench/crafted.py "$dir"
bash scripts/build-release.sh >/dev/null
bin=$PWD/.build/release/phonehome
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
peak() { # options... inputs...: the run's peak in MB and its seconds
    local start end
    start=$(date +%s.%N)
    "$bin" analyze -q --no-input-hash "$@" -o "$out/run" > /dev/null 2>&1 || true
    end=$(date +%s.%N)
    local bytes
    bytes=$(grep -o '"peak_rss_bytes":[0-9]*' "$out/run/manifest.json" | cut -d: -f2)
    rm -rf "$out/run"
    awk -v b="$bytes" -v s="$start" -v e="$end" 'BEGIN { printf "%7.0f MB %7.1f s", b / 1e6, e - s }'
}
all=("$dir/emails.pcap" "$dir/filled.pcap" "$dir/queries.pcap" "$dir/pipelined.pcap" "$dir/datagrams.pcap")
printf "%-16s %-20s %-20s %-20s\n" "capture" "-j 1" "-j 2" "--workers 2"
for f in "${all[@]}"; do
    printf "%-16s %-20s %-20s %-20s\n" "$(basename "$f")" "$(peak -j 1 "$f")" "$(peak -j 2 "$f")" "$(peak -j 2 --workers 2 "$f")"
done
printf "%-16s %-20s %-20s %-20s\n" "all five" "$(peak -j 1 "${all[@]}")" "$(peak -j 2 "${all[@]}")" "$(peak -j 2 --workers 2 "${all[@]}")"
logs=("$dir/tables.strace" "$dir/unfinished.strace" "$dir/egress.log" "$dir/network.csv")
printf "\n%-18s %-20s %s\n" "host log" "-j 1" "host model (estimated) / budget"
hostpeak() { # jobs inputs...: the run's peak, its seconds, and what the host model held by its estimate
    local start end jobs=$1
    shift
    start=$(date +%s.%N)
    "$bin" analyze -q --no-input-hash -j "$jobs" "$@" -o "$out/run" > /dev/null 2>&1 || true
    end=$(date +%s.%N)
    grep -o '"peak_rss_bytes":[0-9]*\|"memory_bytes":[0-9]*,"memory_budget_bytes":[0-9]*' "$out/run/manifest.json" | tr '\n' ',' \
        | awk -F'[:,]' -v s="$start" -v e="$end" '{ printf "%7.0f MB %7.1f s   %.0f / %.0f MB", $2 / 1e6, e - s, $4 / 1e6, $6 / 1e6 }'
    rm -rf "$out/run"
}
for f in "${logs[@]}"; do
    printf "%-18s %s\n" "$(basename "$f")" "$(hostpeak 1 "$f")"
done
printf "%-18s %s\n" "all + captures" "$(hostpeak 1 "${logs[@]}" "${all[@]}")"
printf "%-18s %s\n" "the same, -j 2" "$(hostpeak 2 "${logs[@]}" "${all[@]}")"
# Many inputs: what a run keeps per input, not per packet (links to one file each).
many() { # NAME COUNT FILE: a directory of COUNT links to FILE, made once
    local d="$dir/many-$1"
    if [ ! -d "$d" ]; then
        mkdir -p "$d.partial"
        for i in $(seq 1 "$2"); do ln -sf "$3" "$d.partial/$1.$i"; done
        mv "$d.partial" "$d"
    fi
    echo "$d"
}
printf "\n%-34s %s\n" "many inputs" "-j 2"
printf "%-34s %s\n" "100 x malformed.pcap" "$(peak -j 2 "$(many malformed 100 "$dir/malformed.pcap")")"
printf "%-34s %s\n" "20,000 x samples/workstation.pcap" "$(peak -j 2 "$(many small 20000 "$PWD/samples/workstation.pcap")")"
printf "%-34s %s\n" "20,000 x samples/workstation.strace" "$(peak -j 2 "$(many trace 20000 "$PWD/samples/workstation.strace")" samples/workstation.pcap)"
# SBOMs: read as a stream; of the packages' files only those the host logs can ask about
# are kept (here, the sample trace's), and a run keeps at most SBOMDocument.maxEntries.
printf "\n%-34s %s\n" "SBOM (with the sample capture and trace)" "-j 2"
for f in image.cdx.json image.syft.json tiny.cdx.json; do
    printf "%-34s %s\n" "$f ($(( $(stat -c %s "$dir/$f") / 1000000 )) MB)" "$(peak -j 2 samples/workstation.pcap samples/workstation.strace "$dir/$f")"
done
printf "%-34s %s\n" "all three" "$(peak -j 2 samples/workstation.pcap samples/workstation.strace "$dir/image.cdx.json" "$dir/image.syft.json" "$dir/tiny.cdx.json")"
