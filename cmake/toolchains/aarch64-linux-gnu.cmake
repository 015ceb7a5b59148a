# Cross toolchain: Linux arm64 with Debian's aarch64-linux-gnu gcc; tests run under qemu-user.
#   apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static libc6-dev-arm64-cross
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# binfmt_misc is not mounted on the CI machines: always run target binaries through qemu explicitly.
# With multiarch libc6:arm64 installed (needed for .NET under qemu) the -L sysroot must NOT be passed
# (spec/toolchain.md 4a'); otherwise point qemu at the cross sysroot.
find_program(BNB_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(BNB_QEMU_AARCH64)
  if(EXISTS /lib/ld-linux-aarch64.so.1 OR EXISTS /usr/lib/aarch64-linux-gnu/libc.so.6)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${BNB_QEMU_AARCH64}")
  else()
    set(CMAKE_CROSSCOMPILING_EMULATOR "${BNB_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu")
  endif()
endif()
