# bnb_add_backend(<name> SOURCES <src>... [DEFINES <def>...] [COMPILE_OPTIONS <opt>...] [LINK_LIBRARIES <lib>...])
#
# Adds one backend: a shared library <name> (lib<name>.so / <name>.dll / lib<name>.dylib) that
#   * compiles its SOURCES with BNB_BUILDING_BACKEND plus DEFINES and COMPILE_OPTIONS,
#   * links bnb_common (static, PIC) and, on Unix, the math library,
#   * on mingw links libgcc/libwinpthread statically (imports only KERNEL32 + msvcrt),
#   * exports exactly bnb_probe and bnb_get_api (hidden visibility + ELF version script / PE .def file),
#   * is written to BNB_OUTPUT_DIR (artifacts/native/<rid>/),
#   * gets a ctest `exports.<name>` that checks its dynamic export list (tests/abi).
# Missing SOURCES (a backend whose code has not landed yet) skip the backend with a message instead of failing.
#
# The list of built backends is in the global property BNB_BACKENDS (tests iterate it), e.g.
#   get_property(backends GLOBAL PROPERTY BNB_BACKENDS)
#   foreach(b IN LISTS backends) ... $<TARGET_FILE:${b}> ... endforeach()
include_guard(GLOBAL)

set_property(GLOBAL PROPERTY BNB_BACKENDS "")
set(BNB_EXPORTS_MAP "${CMAKE_CURRENT_LIST_DIR}/bnb_exports.map")
set(BNB_EXPORTS_DEF "${CMAKE_CURRENT_LIST_DIR}/bnb_exports.def")

function(bnb_add_backend name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "SOURCES;DEFINES;COMPILE_OPTIONS;LINK_LIBRARIES")
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "bnb_add_backend(${name}): SOURCES is required")
  endif()

  set(missing "")
  foreach(src IN LISTS ARG_SOURCES)
    if(NOT IS_ABSOLUTE "${src}")
      set(src "${CMAKE_CURRENT_SOURCE_DIR}/${src}")
    endif()
    if(NOT EXISTS "${src}")
      list(APPEND missing "${src}")
    endif()
  endforeach()
  if(missing)
    list(JOIN missing ", " missing)
    message(STATUS "Bnb: backend ${name} skipped: sources not present yet (${missing})")
    set_property(GLOBAL APPEND PROPERTY BNB_SKIPPED_BACKENDS "${name}")
    return()
  endif()

  add_library(${name} SHARED ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE bnb_common ${ARG_LINK_LIBRARIES})
  target_compile_definitions(${name} PRIVATE BNB_BUILDING_BACKEND ${ARG_DEFINES})
  if(ARG_COMPILE_OPTIONS)
    target_compile_options(${name} PRIVATE ${ARG_COMPILE_OPTIONS})
  endif()
  set_target_properties(${name} PROPERTIES
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${BNB_OUTPUT_DIR}" # .so / .dylib
    RUNTIME_OUTPUT_DIRECTORY "${BNB_OUTPUT_DIR}" # .dll
    ARCHIVE_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/lib" # import libraries stay out of the package dir
  )
  # Multi-config generators: no per-config subdirectories inside artifacts/native/<rid>.
  foreach(cfg IN LISTS CMAKE_CONFIGURATION_TYPES)
    string(TOUPPER "${cfg}" cfg)
    set_target_properties(${name} PROPERTIES
      LIBRARY_OUTPUT_DIRECTORY_${cfg} "${BNB_OUTPUT_DIR}"
      RUNTIME_OUTPUT_DIRECTORY_${cfg} "${BNB_OUTPUT_DIR}")
  endforeach()

  if(WIN32)
    # The .def file pins the PE export table; mingw: no libgcc DLL dependency, no lib prefix.
    target_sources(${name} PRIVATE "${BNB_EXPORTS_DEF}")
    set_target_properties(${name} PROPERTIES PREFIX "")
    if(MINGW)
      # Imports only KERNEL32 + msvcrt: libgcc and libwinpthread (pulled in by _Thread_local / threads in the
      # posix flavour) are linked statically, so the DLL loads without mingw runtime DLLs next to it.
      target_link_options(${name} PRIVATE -static-libgcc -static)
    endif()
  elseif(APPLE)
    target_link_options(${name} PRIVATE "LINKER:-exported_symbol,_bnb_probe" "LINKER:-exported_symbol,_bnb_get_api")
  else()
    target_link_options(${name} PRIVATE "LINKER:--version-script=${BNB_EXPORTS_MAP}" "LINKER:--no-undefined")
    set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${BNB_EXPORTS_MAP}")
  endif()
  if(UNIX)
    target_link_libraries(${name} PRIVATE m)
  endif()

  set_property(GLOBAL APPEND PROPERTY BNB_BACKENDS "${name}")
endfunction()
