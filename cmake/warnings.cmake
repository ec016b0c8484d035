# The one place for compiler flags: every duplex target links duplex_flags.
add_library(duplex_flags INTERFACE)
target_compile_options(duplex_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wold-style-cast
  -Wnon-virtual-dtor -Woverloaded-virtual
  # GCC 12 reports a false positive inside Asio's awaitable frame allocator at -O1 and above.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)
if(DUPLEX_WERROR)
  target_compile_options(duplex_flags INTERFACE -Werror)
endif()
if(DUPLEX_SANITIZE AND DUPLEX_TSAN)
  message(FATAL_ERROR "DUPLEX_SANITIZE (ASan) and DUPLEX_TSAN cannot be combined")
endif()
if(DUPLEX_TSAN)
  # -Wno-tsan: GCC 12 warns that TSan does not model the atomic_thread_fence inside Asio's
  # headers; that is Asio's code, and -Werror must not turn it into a build failure.
  # -O1 (after the build type's -O2): TSan asks for -O1 or above, and the coroutine-heavy files
  # compile in a quarter less time (17.7 s -> 13.0 s for client/exec_session.cpp).
  target_compile_options(duplex_flags INTERFACE -fsanitize=thread -fno-omit-frame-pointer -O1
    $<$<CXX_COMPILER_ID:GNU>:-Wno-tsan>)
  target_link_options(duplex_flags INTERFACE -fsanitize=thread)
endif()
if(DUPLEX_SANITIZE)
  target_compile_options(duplex_flags INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(duplex_flags INTERFACE -fsanitize=address,undefined)
endif()
