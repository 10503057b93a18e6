#!/usr/bin/env bash
# The release build of phonehome, as the README and the benchmarks make it: the Swift
# runtime and Foundation linked into the binary (no symbol lookups at start, direct calls
# to retain and release) and link-time optimisation across every module and the C code.
# On the bench capture that is 8% less CPU than a plain `swift build -c release`
# (bench/HISTORY.md, tenth session), for about a minute and a half more of building.
# Extra arguments go to `swift build`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec swift build -c release --product phonehome --static-swift-stdlib --experimental-lto-mode=full "$@"
