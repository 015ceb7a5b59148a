#!/usr/bin/env bash
# run-device-check.sh — the whole GPU check of issue 7 in one go (≈5 minutes), for a session that has a GPU.
#
# Runs on the GPU machine from the repository root. Needs only the NVIDIA driver there (no .NET, no ../shared, no
# toolkit): the binaries are built HERE (the project machine) and carried along:
#
#   ./build.sh native                         # bnb_cuda (all archs), bnb_cpu_ref, conformance_test, bnb_gpu_bench
#   device tool: run(command="benchmarks/gpu/run-device-check.sh",
#                    carry=["artifacts/native/linux-x64", "build/linux-x64-release/bin"], timeout_s=420)
#
# Steps (each with its own time limit; results under $OUT, default ./device-check-out):
#   1. device.txt           nvidia-smi / driver version
#   2. no-device test       must SKIP here (the backend sees a device: bnb_probe() > 0)
#   3. conformance.txt      tests/native/conformance_test: every op of bnb_cuda vs bnb_cpu_ref, full grid
#   4. conformance-simt.txt the same (quick grid) with BNB_GPU_DISABLE=mma,imma,gemv: the SIMT fallbacks
#   5. gpu-bench.txt/.json  benchmarks/gpu/gpu_bench.cpp: copy bandwidth, NF4 gemv/gemm, int8 matmul, 8-bit AdamW
#                           (vs bf16 cuBLAS when libcublas is on the machine)
#   6. sanitizer.txt        compute-sanitizer memcheck over the quick conformance grid, if installed and time is left
# Exit status: 0 when every step that ran passed. Paste the summary into benchmarks/README.md ("GPU results").
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

OUT=${OUT:-$PWD/device-check-out}
LIB_DIR=${BNB_LIB_DIR:-artifacts/native/linux-x64}
BIN_DIR=${BNB_BIN_DIR:-build/linux-x64-release/bin}
BACKEND=${BNB_GPU_BACKEND:-cuda}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: > "$summary"
start=$(date +%s)
failed=0

note() { echo "$*" | tee -a "$summary"; }
left() { echo $(( ${BUDGET_S:-300} - ($(date +%s) - start) )); }

ref="$LIB_DIR/libbnb_cpu_ref.so"
cand="$LIB_DIR/libbnb_${BACKEND}.so"
for f in "$ref" "$cand" "$BIN_DIR/conformance_test" "$BIN_DIR/bnb_gpu_bench" "$BIN_DIR/gpu_no_device_test"; do
  if [[ ! -e $f ]]; then
    note "MISSING $f — build with ./build.sh native on the project machine and carry artifacts/native/linux-x64 and build/linux-x64-release/bin"
    exit 2
  fi
done

step() { # step <name> <timeout-s> <output-file> <command...>
  local name=$1 limit=$2 file=$3; shift 3
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$file" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  case $rc in
    0) note "PASS  $name (${dt} s) -> $file";;
    77) note "SKIP  $name (${dt} s) -> $file: $(tail -n 1 "$OUT/$file")";;
    124) note "TIMEOUT $name after ${limit} s -> $file"; failed=1;;
    *) note "FAIL  $name (rc $rc, ${dt} s) -> $file: $(tail -n 3 "$OUT/$file" | tr '\n' ' ')"; failed=1;;
  esac
  return $rc
}

{ date -u; uname -a; nvidia-smi 2>&1 || echo "nvidia-smi not found"; } > "$OUT/device.txt"
note "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)"
note "binaries: $(ls -la "$cand" | awk '{print $5, $6, $7, $8, $9}')"

# 2. with a device the no-device test must skip (exit 77); a pass here means the backend did not see the GPU
timeout 60 "$BIN_DIR/gpu_no_device_test" "$cand" "$BACKEND" "${BACKEND^^}" > "$OUT/no-device.txt" 2>&1
rc=$?
if [[ $rc -eq 77 ]]; then note "PASS  backend sees the device (no-device test skipped: $(head -c 160 "$OUT/no-device.txt"))"
else note "FAIL  the backend does not see a device here (no-device test rc $rc): $(tail -n 2 "$OUT/no-device.txt")"; failed=1; fi

step "conformance ${BACKEND} vs cpu_ref (full grid)" 170 conformance.txt \
  "$BIN_DIR/conformance_test" "$ref" "$cand" --threads 1,2
step "conformance ${BACKEND} SIMT paths (BNB_GPU_DISABLE=mma,imma,gemv, quick grid)" 50 conformance-simt.txt \
  env BNB_GPU_DISABLE=mma,imma,gemv "$BIN_DIR/conformance_test" "$ref" "$cand" --quick --threads 1
step "gpu benchmarks" 75 gpu-bench.txt "$BIN_DIR/bnb_gpu_bench" "$cand" --json "$OUT/gpu-bench.json"
grep -E "^(copy|gemv|gemm|int8|adamw8) " "$OUT/gpu-bench.txt" >> "$summary" 2>/dev/null

if command -v compute-sanitizer > /dev/null && (( $(left) > 60 )); then
  step "compute-sanitizer memcheck (quick conformance)" $(( $(left) - 10 )) sanitizer.txt \
    compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN_DIR/conformance_test" "$ref" "$cand" --quick --threads 1
else
  note "SKIP  compute-sanitizer: $(command -v compute-sanitizer > /dev/null && echo "not enough time left ($(left) s)" || echo "not installed")"
fi
grep -E "^(PASSED|FAILED):" "$OUT/conformance.txt" "$OUT/conformance-simt.txt" 2>/dev/null | tee -a "$summary"
note "total $(( $(date +%s) - start )) s; $( ((failed)) && echo FAILED || echo ok)"
exit $failed
