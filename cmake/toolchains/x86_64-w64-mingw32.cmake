# Cross toolchain: Windows x64 with Debian's mingw-w64 (posix threads flavour); tests run under wine.
#   apt-get install gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix wine
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR AMD64)

set(_bnb_mingw x86_64-w64-mingw32)
find_program(BNB_MINGW_CC NAMES ${_bnb_mingw}-gcc-posix ${_bnb_mingw}-gcc)
find_program(BNB_MINGW_CXX NAMES ${_bnb_mingw}-g++-posix ${_bnb_mingw}-g++)
set(CMAKE_C_COMPILER "${BNB_MINGW_CC}")
set(CMAKE_CXX_COMPILER "${BNB_MINGW_CXX}")
set(CMAKE_RC_COMPILER ${_bnb_mingw}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${_bnb_mingw})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Test executables: no libgcc/libstdc++/winpthread DLLs needed next to them under wine.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# GCC PR 54412 guard for AVX code on Win64 (harmless otherwise; spec/toolchain.md §2).
set(CMAKE_C_FLAGS_INIT "-Wa,-muse-unaligned-vector-move")
set(CMAKE_CXX_FLAGS_INIT "-Wa,-muse-unaligned-vector-move")

find_program(BNB_WINE NAMES wine wine64)
if(BNB_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${BNB_WINE}")
endif()
