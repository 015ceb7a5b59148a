#!/usr/bin/env bash
# The optimizer measurements of benchmarks/README.md ("Optimizers"): 100 M f32 parameters (tensors of 4 M elements),
# AdamW with 32-bit, 8-bit and paged 8-bit state (budget = a quarter of the state: every step evicts and reloads),
# and TorchSharp's fp32 AdamW, at 1 and N threads, in one BenchmarkDotNet run (benchmarks/Bnb.Benchmarks.Torch),
# plus the same Bnb configurations through `bnb bench optim --json` (params/s, state bytes/param, pager traffic).
# Writes benchmarks/results/optim-*.{json,md}.
#
#   benchmarks/run-optim.sh                 # natives from artifacts/native/linux-x64 (./build.sh native first)
#   PARAMS=100000000 THREADS=1,2 benchmarks/run-optim.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BNB_LIBRARY_PATH=${BNB_LIBRARY_PATH:-$PWD/artifacts/native/linux-x64}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1 UseSharedCompilation=false
params=${PARAMS:-100000000}
threads=${THREADS:-1,$(nproc)}
[[ $threads == 1,1 ]] && threads=1
mkdir -p benchmarks/results

dotnet build tools/Bnb.Cli/Bnb.Cli.csproj -c Release -nologo -v quiet >/dev/null
bnb="dotnet tools/Bnb.Cli/bin/Release/net10.0/bnb.dll"
for cfg in "--bits 32" "--bits 8" "--bits 8 --paged"; do
  name=$(echo "$cfg" | tr -d ' -' | sed 's/bits/adamw/')
  $bnb bench optim --kind adamw $cfg --params "$params" --threads "$threads" --repeat 5 --json >"benchmarks/results/optim-$name.json"
done

# One BenchmarkDotNet run: TorchSharp fp32 AdamW next to the three Bnb configurations (same parameters, same threads).
dotnet build benchmarks/Bnb.Benchmarks.Torch/Bnb.Benchmarks.Torch.csproj -c Release -nologo -v quiet >/dev/null
(cd benchmarks/Bnb.Benchmarks.Torch && BNB_OPTIM_BENCH_PARAMS=$params dotnet bin/Release/net10.0/Bnb.Benchmarks.Torch.dll \
  --filter '*' --job short --exporters github)
cp benchmarks/Bnb.Benchmarks.Torch/BenchmarkDotNet.Artifacts/results/Bnb.Benchmarks.Torch.TorchAdamWBenchmarks-report-github.md \
  benchmarks/results/optim-torch-side-by-side.md
echo "benchmarks/results/optim-*.json and optim-torch-side-by-side.md written"
