#!/usr/bin/env bash
# Benchmark (not a test): phonehome against the read floor, tcpdump and ngrep on the
# shared ~2 GB capture, in one run, hot page cache. Builds the capture if it is missing.
# Usage: bench/run.sh [CAPTURE]   (default: $PHONEHOME_BENCH or /tmp/phonehome-bench/bench.pcap)
# Needs: apt-get install -y tcpreplay wireshark-common tcpdump ngrep
set -euo pipefail
cd "$(dirname "$0")/.."
cap=${1:-${PHONEHOME_BENCH:-/tmp/phonehome-bench/bench.pcap}}
if [ ! -f "$cap" ]; then
    mkdir -p "$(dirname "$cap")"
    bash ../shared/bench/make_bench.sh "$cap"
fi
bash scripts/build-release.sh >/dev/null
bin=.build/release/phonehome
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
mb=$(( $(stat -c %s "$cap") / 1000000 ))
frames=$(capinfos -c -M "$cap" 2>/dev/null | awk -F: '/Number of packets/{gsub(/ /,"",$2); print $2}')
cat "$cap" > /dev/null
# Each tool runs once per round, the rounds one after another, and the best of 3 rounds
# counts: this host's speed drifts by 10-20% within minutes, and interleaving exposes
# every tool to the same drift (running one tool 3 times, then the next, did not).
best() { # name, command... : best of 3 wall times, peak RSS of the best run (the xz pair)
    local name=$1; shift
    local bs="" brss=""
    for _ in 1 2 3; do
        local tf; tf=$(mktemp)
        /usr/bin/time -o "$tf" -f '%e %M' "$@" > /dev/null 2>&1 || true
        read -r s k < <(tail -1 "$tf"); rm -f "$tf"
        if [ -z "$bs" ] || awk -v a="$s" -v b="$bs" 'BEGIN{exit !(a<b)}'; then bs=$s; brss=$k; fi
    done
    echo "$name	$bs	$brss"
}
# Each timed phonehome run writes into an output directory emptied just before it (not
# timed): replacing the files of the round before freed their blocks inside the timed
# run (0.13 s at the end of a 3 s run on this ext4, mounted with online discard), a cost
# tcpdump and ngrep, writing nowhere, never pay. NAME OUTPUT-DIRECTORIES COMMAND...
names=(); cmds=(); outs=()
add() { names+=("$1"); outs+=("$2"); shift 2; cmds+=("$(printf '%q ' "$@")"); }
add "cat (read floor)" "" cat "$cap"
add "tcpdump -r X -w /dev/null" "" tcpdump -r "$cap" -w /dev/null
add "phonehome read (own read loop: records, no decoding)" "" $bin read "$cap"
add "phonehome analyze (flows, community_id; no app layer, no hash)" "$out/a" $bin analyze -q --no-input-hash --no-app-layer "$cap" -o "$out/a"
add "phonehome -j 1 (+ DNS/HTTP/TLS/QUIC, rules off, no hash)" "$out/b1" $bin analyze -q -j 1 --no-input-hash --no-rules "$cap" -o "$out/b1"
add "phonehome -j $(nproc) (+ DNS/HTTP/TLS/QUIC, rules off, no hash)" "$out/b" $bin analyze -q --no-input-hash --no-rules "$cap" -o "$out/b"
add "phonehome -j 1 (+ default rule packs, no hash)" "$out/r1" $bin analyze -q -j 1 --no-input-hash "$cap" -o "$out/r1"
add "phonehome -j $(nproc) (+ default rule packs, no hash)" "$out/r" $bin analyze -q --no-input-hash "$cap" -o "$out/r"
add "phonehome -j $(nproc) (default: rules + SHA-256 of input + reports)" "$out/c" $bin analyze -q "$cap" -o "$out/c"
# One file split by flow hash: each worker reads and decodes the whole file, and keeps
# its own flows; on N cores the sinks and the writer share them with the workers.
add "phonehome --workers $(nproc) (split by flow hash; rules on, no hash)" "$out/w" $bin analyze -q --no-input-hash --workers "$(nproc)" "$cap" -o "$out/w"
# The host's own ceiling for N-way work: N independent 1-job runs at once, no data shared
# (a 1-job run keeps its output writer on a thread of its own, so it already takes a
# little more than one core).
add "$(nproc) x phonehome -j 1 at once (rules on, no hash; whole group)" "$(seq -f "$out/s%g" "$(nproc)" | tr '\n' ' ')" bash -c \
    "for i in \$(seq $(nproc)); do $bin analyze -q -j 1 --no-input-hash '$cap' -o '$out/s'\$i & done; wait"
# ngrep with one email regex over each packet (no reassembly, no other rule).
add "ngrep -q -I X -W none EMAIL-REGEX" "" ngrep -q -I "$cap" -W none '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}'
declare -a bestS bestK bestC
for _ in 1 2 3; do
    for i in "${!cmds[@]}"; do
        if [ -n "${outs[$i]}" ]; then rm -rf ${outs[$i]}; fi   # paths without spaces (mktemp)
        tf=$(mktemp)
        eval "/usr/bin/time -o $tf -f '%e %M %U %S' ${cmds[$i]}" > /dev/null 2>&1 || true
        read -r s k u y < <(tail -1 "$tf"); rm -f "$tf"
        if [ -z "${bestS[$i]:-}" ] || awk -v a="$s" -v b="${bestS[$i]}" 'BEGIN{exit !(a<b)}'; then
            bestS[$i]=$s; bestK[$i]=$k; bestC[$i]=$(awk -v u="$u" -v y="$y" 'BEGIN{printf "%.2f", u + y}')
        fi
    done
done
{
for i in "${!cmds[@]}"; do echo "${names[$i]}	${bestS[$i]}	${bestK[$i]}	${bestC[$i]}"; done
# tshark name extraction takes minutes on 2 GB: once (PHONEHOME_BENCH_TSHARK=0 skips it);
# then the ratio of the app-layer run to it and how far the extracted names agree.
if [ "${PHONEHOME_BENCH_TSHARK:-1}" = 1 ]; then
    tf=$(mktemp)
    /usr/bin/time -o "$tf" -f '%e %M %U %S' tshark -r "$cap" -T fields -e dns.qry.name -e http.host -e http.request.uri \
        -e tls.handshake.extensions_server_name > "$out/tshark-names.tsv" 2>/dev/null || true
    read -r s k u y < <(tail -1 "$tf"); rm -f "$tf"
    echo "tshark -T fields (names, 1 run)	$s	$k	$(awk -v u="$u" -v y="$y" 'BEGIN{printf "%.2f", u + y}')"
fi
} > "$out/times.tsv"
echo "capture: $cap, $mb MB, ${frames:-?} packets; $(nproc) cores; $(date -u +%Y-%m-%d)"
awk -F'\t' -v mb="$mb" -v frames="${frames:-0}" '
    NR==1 { floor=$2 } NR==2 { tcpdump=$2 }
    { rows[NR]=$0; name[NR]=$1; s[NR]=$2; rss[NR]=$3; cpu[NR]=$4 }
    END {
        printf "%-58s %8s %7s %9s %9s %10s %12s %12s\n", "tool", "seconds", "CPU s", "MB/s", "Mpkt/s", "peak MB", "vs floor", "vs tcpdump"
        for (i = 1; i <= NR; i++)
            printf "%-58s %8.2f %7.2f %9.0f %9.2f %10.0f %11.2fx %11.2fx\n", name[i], s[i], cpu[i], mb/s[i], frames/s[i]/1e6, rss[i]/1024, floor/s[i], tcpdump/s[i]
    }' "$out/times.tsv"
awk -F'\t' -v mb="$mb" -v n="$(nproc)" '
    /-j 1 .*rules off/ { off1=$2 } /-j [2-9].*rules off/ { off=$2 } /-j 1 .*default rule packs, no hash/ { on1=$2 }
    /-j [2-9].*default rule packs, no hash/ { on=$2 } /^ngrep/ { ng=$2 } /^tcpdump/ { td=$2 } /^cat/ { floor=$2 }
    END {
        printf "\nrules off: %.0f MB/s with 1 job, %.0f MB/s with %d (%.2fx); rules on: %.0f MB/s with 1 job, %.0f MB/s with %d (%.2fx)\n", mb/off1, mb/off, n, off1/off, mb/on1, mb/on, n, on1/on
        printf "targets: rules off 1 job vs cat %.2fx (0.5x wanted); rules on 1 job %.2fx tcpdump time (2x at most wanted); rules on vs ngrep (one regex): %.2fx\n", floor/off1, on1/td, ng/on
    }' "$out/times.tsv"
echo "findings (default packs): $(wc -l < "$out/r/findings.jsonl") lines"
awk -F'\t' -v mb="$mb" -v n="$(nproc)" '
    /-j 1 .*default rule packs, no hash/ { on1=$2 } /-j [2-9].*default rule packs, no hash/ { on=$2 } /^phonehome --workers/ { w=$2 }
    /x phonehome -j 1 at once/ { group=$2 }
    END { printf "split by flow hash, %d workers: %.0f MB/s, %.2fx the speed of 1 job, %.2fx that of the %d-job pipeline\n", n, mb/w, on1/w, on/w, n
          printf "%d independent 1-job runs at once: %.2fx the throughput of one (the host'"'"'s ceiling for %d jobs; the %d-job pipeline: %.2fx)\n", n, n*on1/group, n, n, on1/on }' "$out/times.tsv"
same=yes
for f in conn dns http tls findings callouts anomalies; do cmp -s "$out/r1/$f.jsonl" "$out/w/$f.jsonl" || same=no; done
echo "outputs of the split run and the 1-job run the same bytes: $same"
# Several plain inputs: with N jobs, files up to 64 MiB are analysed side by side, each by
# one thread, and merged in input order (the pool); --pool-max-mib 0 runs them one at a
# time, each as a pipeline of threads. Two sets: the capture cut in 32 parts (editcap -c,
# made once beside the capture; PHONEHOME_BENCH_PARTS=no skips both), and 2,000 links to
# the 7 KB sample, where starting and ending each input is most of the work.
plain="$cap.parts"
if [ "${PHONEHOME_BENCH_PARTS:-yes}" != no ]; then
    if [ ! -d "$plain" ]; then
        mkdir -p "$plain.tmp"
        editcap -c $(( (${frames:-4000000} + 31) / 32 )) "$cap" "$plain.tmp/part.pcap"
        mv "$plain.tmp" "$plain"
    fi
    small="$out/small"; mkdir -p "$small"
    for i in $(seq 2000); do ln -s "$PWD/samples/workstation.pcap" "$small/w$i.pcap"; done
    cat "$plain"/* > /dev/null
    n=$(nproc)
    {
    best "phonehome -j 1 PARTS (rules, no hash)" $bin analyze -q -j 1 --no-input-hash "$plain" -o "$out/p1"
    best "phonehome -j $n PARTS (pooled)" $bin analyze -q --no-input-hash "$plain" -o "$out/pp"
    best "phonehome -j $n --pool-max-mib 0 PARTS (one at a time)" $bin analyze -q --no-input-hash --pool-max-mib 0 "$plain" -o "$out/p0"
    best "phonehome -j 1 SMALL (rules, no hash)" $bin analyze -q -j 1 --no-input-hash "$small" -o "$out/m1"
    best "phonehome -j $n SMALL (pooled)" $bin analyze -q --no-input-hash "$small" -o "$out/mp"
    best "phonehome -j $n --pool-max-mib 0 SMALL (one at a time)" $bin analyze -q --no-input-hash --pool-max-mib 0 "$small" -o "$out/m0"
    } > "$out/plain.tsv"
    echo
    echo "$(ls "$plain" | wc -l) plain inputs (PARTS, $(du -m -c "$plain"/* | tail -1 | cut -f1) MB) and 2,000 x samples/workstation.pcap (SMALL):"
    awk -F'\t' '{ printf "%-58s %8.2f s %10.0f peak MB\n", $1, $2, $3/1024; s[NR]=$2 }
        END { printf "several inputs, %d jobs against 1: PARTS %.2fx pooled, %.2fx one at a time; SMALL %.2fx pooled, %.2fx one at a time\n", '"$n"', s[1]/s[2], s[1]/s[3], s[4]/s[5], s[4]/s[6] }' "$out/plain.tsv"
    same=yes
    for f in conn dns http tls findings callouts anomalies; do
        for d in pp p0; do cmp -s "$out/p1/$f.jsonl" "$out/$d/$f.jsonl" || same=no; done
        for d in mp m0; do cmp -s "$out/m1/$f.jsonl" "$out/$d/$f.jsonl" || same=no; done
    done
    echo "outputs with 1 and $n jobs, pooled or not: the same bytes: $same"
fi
# xz input: decompression runs on its own thread, so the analysis should cost little on
# top of `xz -dc` alone. The compressed copy (xz -1, one block) is made once, beside the
# capture, when PHONEHOME_BENCH_XZ=1 or when it is already there (PHONEHOME_BENCH_XZ=no
# skips the xz rows: they take some ten minutes).
xzcap="$cap.xz"
if [ "${PHONEHOME_BENCH_XZ:-0}" = 1 ] && [ ! -f "$xzcap" ]; then xz -1 -T1 -k -c "$cap" > "$xzcap"; fi
if [ "${PHONEHOME_BENCH_XZ:-0}" = no ]; then xzcap=/nonexistent; fi
if [ -f "$xzcap" ]; then
    cat "$xzcap" > /dev/null
    {
    best "xz -dc X.xz > /dev/null" xz -dc "$xzcap"
    best "phonehome -j $(nproc) X.xz (default: rules + SHA-256 + reports)" $bin analyze -q "$xzcap" -o "$out/x"
    } > "$out/xz.tsv"
    echo
    awk -F'\t' '{ printf "%-58s %8.2f s %10.0f peak MB\n", $1, $2, $3/1024; s[NR]=$2 }
        END { printf "xz input: phonehome %.2fx the time of xz -dc alone (1.2x at most wanted)\n", s[2]/s[1] }' "$out/xz.tsv"
fi
# Several xz inputs: with N jobs the inputs after the current one decompress ahead on the
# other cores. The capture cut in 4 (editcap -c), each part xz -1, is made once beside the
# capture when PHONEHOME_BENCH_XZ=1 or already there; each tool runs once (minutes each).
parts="$cap.xz-parts"
if [ "${PHONEHOME_BENCH_XZ:-0}" = 1 ] && [ ! -d "$parts" ]; then
    mkdir -p "$parts.tmp"
    editcap -c $(( (${frames:-4000000} + 3) / 4 )) "$cap" "$parts.tmp/part.pcap"
    for f in "$parts.tmp"/part*.pcap; do xz -1 -T1 "$f" & done; wait
    mv "$parts.tmp" "$parts"
fi
if [ -d "$parts" ] && [ "${PHONEHOME_BENCH_XZ:-0}" != no ]; then
    cat "$parts"/*.xz > /dev/null
    once() { local tf; tf=$(mktemp); /usr/bin/time -o "$tf" -f '%e %M' "${@:2}" > /dev/null 2>&1 || true
             read -r s k < <(tail -1 "$tf"); rm -f "$tf"; echo "$1	$s	$k"; }
    {
    once "xz -dc PARTS > /dev/null (one after the other)" xz -dc "$parts"/*.xz
    once "phonehome -j 1 PARTS (default: rules + SHA-256 + reports)" $bin analyze -q -j 1 "$parts" -o "$out/p1"
    once "phonehome -j $(nproc) PARTS (default: rules + SHA-256 + reports)" $bin analyze -q "$parts" -o "$out/p"
    } > "$out/parts.tsv"
    echo
    echo "$(ls "$parts"/*.xz | wc -l) xz inputs ($(du -m -c "$parts"/*.xz | tail -1 | cut -f1) MB compressed):"
    awk -F'\t' '{ printf "%-58s %8.2f s %10.0f peak MB\n", $1, $2, $3/1024; s[NR]=$2 }
        END { printf "several xz inputs: %d jobs %.2fx faster than 1; %.2fx the time of xz -dc alone\n", '"$(nproc)"', s[2]/s[3], s[3]/s[1] }' "$out/parts.tsv"
    cmp -s "$out/p1/findings.jsonl" "$out/p/findings.jsonl" && cmp -s "$out/p1/conn.jsonl" "$out/p/conn.jsonl" \
        && echo "outputs with 1 and $(nproc) jobs: the same bytes" || echo "outputs with 1 and $(nproc) jobs DIFFER"
fi
if [ -f "$out/tshark-names.tsv" ]; then
    awk -F'\t' '/DNS\/HTTP\/TLS/ { app=$2; appk=$3 } /^tshark/ { t=$2; tk=$3 }
        END { printf "\napp layer vs tshark: %.1fx faster, %.1fx less peak memory\n\n", t/app, tk/appk }' "$out/times.tsv"
    python3 bench/compare_names.py "$out/tshark-names.tsv" "$out/b"
fi
