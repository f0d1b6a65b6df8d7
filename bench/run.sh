#!/usr/bin/env bash
# Issue 7: the quick, complete benchmark set (about 10 minutes on 2 cores). Writes bench/results/<date>.md.
# Pass --full for more rounds and bigger runs; --only=dispatch,seed003,roundtrip,host,generator,scaling for a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--quick)
exec dotnet run -c Release --project bench/PluginMm.Bench -- "${args[@]}"
