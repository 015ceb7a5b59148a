# BNB_RID: the .NET runtime identifier the build targets (linux-x64, linux-arm64, win-x64, osx-arm64).
# BNB_OUTPUT_DIR: where backend libraries land (default artifacts/native/<rid>).
include_guard(GLOBAL)

if(NOT DEFINED BNB_RID OR BNB_RID STREQUAL "")
  string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _bnb_arch)
  if(_bnb_arch MATCHES "^(x86_64|amd64|x64)$")
    set(_bnb_arch x64)
  elseif(_bnb_arch MATCHES "^(aarch64|arm64)$")
    set(_bnb_arch arm64)
  endif()
  if(WIN32)
    set(_bnb_os win)
  elseif(APPLE)
    set(_bnb_os osx)
  else()
    string(TOLOWER "${CMAKE_SYSTEM_NAME}" _bnb_os)
  endif()
  set(_bnb_rid "${_bnb_os}-${_bnb_arch}")
else()
  set(_bnb_rid "${BNB_RID}")
endif()
set(BNB_RID "${_bnb_rid}" CACHE STRING ".NET runtime identifier of the target (linux-x64, linux-arm64, win-x64, ...)")
set(BNB_OUTPUT_DIR "${PROJECT_SOURCE_DIR}/artifacts/native/${BNB_RID}"
    CACHE PATH "Directory the backend libraries are written to")

# Everything that is not a backend library (test executables, import libraries) stays in the build tree.
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")
set(CMAKE_LIBRARY_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/lib")
set(CMAKE_ARCHIVE_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/lib")

# Target architecture, for ISA variants (x86-64: AVX2/AVX-512 CPU backends; AArch64: NEON).
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _bnb_processor)
set(BNB_ARCH_X86_64 OFF)
set(BNB_ARCH_AARCH64 OFF)
if(_bnb_processor MATCHES "^(x86_64|amd64|x64)$")
  set(BNB_ARCH_X86_64 ON)
elseif(_bnb_processor MATCHES "^(aarch64|arm64)$")
  set(BNB_ARCH_AARCH64 ON)
endif()
