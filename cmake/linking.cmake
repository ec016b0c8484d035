# How the duplex binary is linked so that a client starts fast (every `duplex exec` pays the
# dynamic loader's work before it touches the network).
#
# Shared, the binary loaded 13 libraries and resolved ~7,700 symbols by name at each start
# (LD_DEBUG=statistics), which was most of `duplex --version`'s time. With DUPLEX_STATIC_DEPS
# (cmake/deps.cmake chooses the archives) it needs glibc alone: glibc stays shared because its
# name service (getaddrinfo for `localhost`, getpwuid for ~) loads modules that a static binary
# cannot use safely. Relative relocations are packed (DT_RELR, glibc 2.36) so that the
# position-independent binary keeps its address randomisation at little cost.
include(CheckLinkerFlag)
check_linker_flag(CXX "-Wl,-z,pack-relative-relocs" DUPLEX_HAS_PACK_RELATIVE_RELOCS)

function(duplex_fast_start target)
  if(NOT DUPLEX_STATIC_DEPS)
    return()
  endif()
  target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc -Wl,--as-needed -Wl,-O1
    $<$<BOOL:${DUPLEX_HAS_PACK_RELATIVE_RELOCS}>:-Wl,-z,pack-relative-relocs>)
  # A shared library creeping back (a new dependency, a target that lost its static form) would
  # undo this silently: the build says so instead.
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -DBINARY=$<TARGET_FILE:${target}>
            -P ${PROJECT_SOURCE_DIR}/cmake/check_needed.cmake
    VERBATIM)
endfunction()
