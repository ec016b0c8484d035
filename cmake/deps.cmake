# Dependencies, all from Debian 12 packages (scripts/deps.sh installs them).
find_package(Threads REQUIRED)
find_package(fmt 9 REQUIRED)
find_package(spdlog 1.10 REQUIRED)
find_package(CLI11 2.1 REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(utf8cpp 3 REQUIRED)

# Standalone Asio is header-only and ships no CMake package.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_library(asio INTERFACE)
target_include_directories(asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
target_compile_definitions(asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
  # clang-14 with libstdc++ 12 has coroutines, but Asio 1.22 only detects them on GCC.
  $<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_CO_AWAIT=1 ASIO_HAS_STD_COROUTINE=1>)
target_link_libraries(asio INTERFACE Threads::Threads)

find_library(EDIT_LIBRARY edit REQUIRED)
find_path(EDIT_INCLUDE_DIR histedit.h REQUIRED)
add_library(libedit INTERFACE)
target_include_directories(libedit SYSTEM INTERFACE ${EDIT_INCLUDE_DIR})
target_link_libraries(libedit INTERFACE ${EDIT_LIBRARY})

if(DUPLEX_BUILD_TESTS)
  find_package(GTest 1.12 REQUIRED)
endif()
if(DUPLEX_BUILD_BENCH)
  find_package(benchmark 1.7 REQUIRED)
endif()
