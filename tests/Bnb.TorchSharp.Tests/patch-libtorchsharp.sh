#!/bin/bash
# Makes TorchSharp 0.107's libLibTorchSharp.so loadable on a system whose libstdc++ predates GCC 13 (Debian 12), by
# running tools/scripts/fix-torchsharp-debian12.sh on the build output dir $1. Does nothing (and says so) where the
# system libstdc++ already provides GLIBCXX_3.4.32, or on non-Linux hosts. Never fails the build: without the fix the
# adapter tests skip with the loader's message.
set -uo pipefail
out=${1:?usage: patch-libtorchsharp.sh <output dir>}
[ "$(uname -s)" = Linux ] || exit 0
lib=$(find "$out" -name libLibTorchSharp.so 2>/dev/null | head -1)
[ -n "$lib" ] || exit 0
stdcxx=$(/sbin/ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
if [ -n "$stdcxx" ] && grep -qa 'GLIBCXX_3\.4\.32' "$stdcxx"; then
  exit 0 # new enough: nothing to patch
fi
for tool in patchelf gcc python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "Bnb.TorchSharp.Tests: $tool not found; libLibTorchSharp.so left unpatched (its tests will skip). Install: apt-get install patchelf"
    exit 0
  fi
done
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../../tools/scripts/fix-torchsharp-debian12.sh" "$out" || echo "Bnb.TorchSharp.Tests: fix-torchsharp-debian12.sh failed; the tests will skip"
exit 0
