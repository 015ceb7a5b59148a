#!/usr/bin/env bash
# Bootstrap: restore Cake (dotnet-tools.json, cake.tool 7.0.0) and run a target of build.cake.
#   ./build.sh            → test (everything CI runs)
#   ./build.sh demo | test | pack | bench | smoke | native | asan | deps | ...   [--cake-arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# No MSBuild/compiler server processes left running after the build (CI waits for nothing it did not start).
export MSBUILDDISABLENODEREUSE=1 UseSharedCompilation=false

target=test
if [[ $# -gt 0 && $1 != -* ]]; then
  target=$1
  shift
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "build.sh: the .NET SDK (10.0) is required: https://dot.net (dotnet not found on PATH)" >&2
  exit 1
fi

dotnet tool restore
exec dotnet cake build.cake --target="$target" "$@"
