// Telling systemd how the server is doing (Type=notify): READY=1 once every listener is bound.
#pragma once

#include <string_view>

namespace duplex::app {

/// Sends `state` ("READY=1\nSTATUS=…", "STOPPING=1") to the service manager when it asked for
/// it ($NOTIFY_SOCKET); does nothing otherwise. libsystemd is loaded only then, so that no other
/// command pays for it.
void notify_service_manager(std::string_view state);

}  // namespace duplex::app
