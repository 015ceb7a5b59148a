#!/usr/bin/env bash
# Regenerates the measured tables of benchmarks/README.md in ONE `bnb bench suite` run: the STREAM-like read
# bandwidth and every issue-4 target op on every loaded backend (cpu_ref, cpu_avx2, cpu_avx512 / cpu_neon) at 1 and
# N threads, side by side. Writes benchmarks/results/suite.{json,md} and splices the Markdown into the README
# between the suite:begin/suite:end markers.
#
#   benchmarks/run-suite.sh                 # natives from artifacts/native/linux-x64 (./build.sh native first)
#   BNB_LIBRARY_PATH=/path benchmarks/run-suite.sh
#   THREADS=1,2 benchmarks/run-suite.sh     # thread counts (default: 1 and every logical CPU)
#
# Run it on an otherwise idle machine: the numbers are only as quiet as the machine is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BNB_LIBRARY_PATH=${BNB_LIBRARY_PATH:-$PWD/artifacts/native/linux-x64}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1 UseSharedCompilation=false
threads=${THREADS:-1,$(nproc)}
[[ $threads == 1,1 ]] && threads=1

dotnet build tools/Bnb.Cli/Bnb.Cli.csproj -c Release -nologo -v quiet >/dev/null
mkdir -p benchmarks/results
dotnet tools/Bnb.Cli/bin/Release/net10.0/bnb.dll bench suite --threads "$threads" --markdown \
  --json-out benchmarks/results/suite.json >benchmarks/results/suite.md

awk -v f=benchmarks/results/suite.md '
  /<!-- suite:begin -->/ { print; while ((getline line < f) > 0) print line; skip = 1; next }
  /<!-- suite:end -->/ { skip = 0 }
  !skip { print }
' benchmarks/README.md >benchmarks/README.md.tmp && mv benchmarks/README.md.tmp benchmarks/README.md
echo "benchmarks/README.md updated from benchmarks/results/suite.json"
