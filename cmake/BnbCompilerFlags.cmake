# Language standards, visibility and warning policy for every native target of the project
# (DESIGN §6 rule 10: warnings are errors in every language and configuration).
include_guard(GLOBAL)

set(CMAKE_C_STANDARD 11)
set(CMAKE_C_STANDARD_REQUIRED ON)
set(CMAKE_C_EXTENSIONS OFF)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)

# Nothing is exported unless marked BNB_EXPORT (and the version script / .def file narrows that to two symbols).
set(CMAKE_C_VISIBILITY_PRESET hidden)
set(CMAKE_CXX_VISIBILITY_PRESET hidden)
set(CMAKE_VISIBILITY_INLINES_HIDDEN ON)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# Reproducible float numerics: the compiler must not fuse a*b+c into an FMA on its own (GCC does by default
# in GNU mode and with -mfma), because bit-exact results depend on where rounding happens. Kernels that want an
# FMA write fmaf()/an intrinsic explicitly.
if(MSVC)
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:/fp:precise>")
else()
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:-ffp-contract=off>")
endif()

if(MSVC)
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:/W4;/WX;/utf-8>")
  add_compile_definitions(_CRT_SECURE_NO_WARNINGS)
else()
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:-Wall;-Wextra;-Werror;-pedantic>")
endif()

if(WIN32)
  # Keep <windows.h> from defining min/max and pulling in rarely used headers.
  add_compile_definitions(WIN32_LEAN_AND_MEAN NOMINMAX)
endif()
if(MINGW)
  # C99 printf family (%zu, %lld) instead of msvcrt's: keeps -Wformat (and -Werror) happy and output correct.
  add_compile_definitions(__USE_MINGW_ANSI_STDIO=1)
endif()

if(BNB_SANITIZERS)
  if(MSVC)
    message(FATAL_ERROR "BNB_SANITIZERS is only supported with GCC/Clang")
  endif()
  add_compile_options(-fsanitize=${BNB_SANITIZERS} -fno-omit-frame-pointer -fno-sanitize-recover=all -g)
  add_link_options(-fsanitize=${BNB_SANITIZERS})
endif()

# Detect whether the C compiler can build sanitized code at all; a clear error beats a link failure.
if(BNB_SANITIZERS)
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=${BNB_SANITIZERS}")
  set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=${BNB_SANITIZERS}")
  check_c_source_compiles("int main(void) { return 0; }" BNB_SANITIZERS_WORK)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(NOT BNB_SANITIZERS_WORK)
    message(FATAL_ERROR "The compiler cannot build with -fsanitize=${BNB_SANITIZERS} (missing sanitizer runtime?)")
  endif()
endif()
