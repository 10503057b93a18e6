#!/usr/bin/env bash
# Installs the system libraries phonehome links (libpcap, PCRE2, Vectorscan, liblzma,
# zlib, yajl), the peer tools the tests compare against (tshark, tcpdump) and ngrep for the
# benchmark, and Chromium for the test that opens report.html headless. Debian; as root
# or through sudo.
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends \
    pkg-config libpcap-dev libpcre2-dev libvectorscan-dev liblzma-dev zlib1g-dev libyajl-dev libmimalloc-dev \
    xz-utils gzip tshark tcpdump ngrep chromium >/dev/null
