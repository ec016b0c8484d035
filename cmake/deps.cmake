# Dependencies, all from Debian 12 packages (scripts/deps.sh installs them).
# With DUPLEX_STATIC_DEPS the same targets carry static archives or header-only forms instead of
# shared libraries (cmake/linking.cmake says why).
find_package(Threads REQUIRED)
find_package(fmt 9 REQUIRED)
find_package(spdlog 1.10 REQUIRED)
find_package(CLI11 2.1 REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
if(DUPLEX_STATIC_DEPS)
  set(OPENSSL_USE_STATIC_LIBS TRUE)
endif()
find_package(OpenSSL 3.0 REQUIRED)
if(DUPLEX_STATIC_DEPS)
  # Debian ships fmt and spdlog as shared libraries only (no libfmt.a): every target compiles
  # them header-only under the names it links. Their .so files stay on link lines, unused, and
  # --as-needed (linking.cmake) keeps them out of the duplex binary.
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY=1)
  set_target_properties(spdlog::spdlog PROPERTIES INTERFACE_COMPILE_DEFINITIONS SPDLOG_FMT_EXTERNAL)
endif()
find_package(utf8cpp 3 REQUIRED)

# Standalone Asio is header-only and ships no CMake package.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_library(asio INTERFACE)
target_include_directories(asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
target_compile_definitions(asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
  # clang-14 with libstdc++ 12 has coroutines, but Asio 1.22 only detects them on GCC.
  $<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_CO_AWAIT=1 ASIO_HAS_STD_COROUTINE=1>)
target_link_libraries(asio INTERFACE Threads::Threads)

find_path(EDIT_INCLUDE_DIR histedit.h REQUIRED)
add_library(libedit INTERFACE)
target_include_directories(libedit SYSTEM INTERFACE ${EDIT_INCLUDE_DIR})
if(DUPLEX_STATIC_DEPS)
  # What libedit.a needs in turn (`pkg-config --static --libs libedit`, and libbsd.a's MD5 from libmd).
  foreach(lib edit tinfo bsd md)
    find_library(STATIC_${lib}_LIBRARY NAMES lib${lib}.a REQUIRED)
    target_link_libraries(libedit INTERFACE ${STATIC_${lib}_LIBRARY})
  endforeach()
else()
  find_library(EDIT_LIBRARY edit REQUIRED)
  target_link_libraries(libedit INTERFACE ${EDIT_LIBRARY})
endif()

# Node.js's HTTP parser (libhttp-parser-dev), for the metrics endpoint's requests: a C library
# whose archive Debian ships, so static builds take it whole.
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
if(DUPLEX_STATIC_DEPS)
  find_library(HTTP_PARSER_LIBRARY NAMES libhttp_parser.a REQUIRED)
else()
  find_library(HTTP_PARSER_LIBRARY NAMES http_parser REQUIRED)
endif()
add_library(http_parser INTERFACE)
target_include_directories(http_parser SYSTEM INTERFACE ${HTTP_PARSER_INCLUDE_DIR})
target_link_libraries(http_parser INTERFACE ${HTTP_PARSER_LIBRARY})

if(DUPLEX_BUILD_TESTS)
  find_package(GTest 1.12 REQUIRED)
endif()
if(DUPLEX_BUILD_BENCH)
  find_package(benchmark 1.7 REQUIRED)
endif()
