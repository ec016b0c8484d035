// sd_notify(3) through libsystemd, opened with dlopen only when systemd started us with
// $NOTIFY_SOCKET: a client command never loads it, and a machine without it still runs the server.
#include "systemd_notify.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>

namespace duplex::app {

void notify_service_manager(std::string_view state) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return;
  using SdNotify = int (*)(int, const char*);
  static SdNotify sd_notify = []() -> SdNotify {
    void* lib = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      spdlog::warn(
          "NOTIFY_SOCKET is set but libsystemd.so.0 cannot be loaded ({}): systemd is "
          "not told that the server is ready; install libsystemd0",
          ::dlerror());
      return nullptr;
    }
    return reinterpret_cast<SdNotify>(::dlsym(lib, "sd_notify"));
  }();
  if (sd_notify == nullptr) return;
  const std::string text(state);
  if (const int rc = sd_notify(0, text.c_str()); rc < 0)
    spdlog::warn("sd_notify({:?}) failed: error {}", text, -rc);
}

}  // namespace duplex::app
