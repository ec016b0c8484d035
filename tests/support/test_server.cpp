// TestServer implementation.
#include "support/test_server.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include <gtest/gtest.h>

namespace duplex::test {

TestServer::TestServer(std::vector<std::string> args, std::size_t listeners) {
  std::vector<std::string> argv{duplex_bin(), "serve"};
  const bool has_listen = std::any_of(
      args.begin(), args.end(), [](const std::string& a) { return a == "--listen" || a == "-l"; });
  // A --config file may name the listeners itself (the caller then says how many).
  const bool has_config = std::find(args.begin(), args.end(), "--config") != args.end();
  if (!has_listen && !has_config) {
    argv.insert(argv.end(), {"--listen", "tcp://127.0.0.1:0"});
  }
  if (listeners == 0)
    listeners = has_listen ? static_cast<std::size_t>(std::count_if(
                                 args.begin(), args.end(),
                                 [](const std::string& a) { return a == "--listen" || a == "-l"; }))
                           : 1;
  argv.insert(argv.end(), args.begin(), args.end());
  // A server that runs commands refuses to start as root without --user or --allow-root; the
  // tests run as root here (CI machines too), and mean it. A test of the refusal runs the server
  // itself.
  const auto has = [&](std::string_view flag) {
    return std::any_of(args.begin(), args.end(), [&](const std::string& a) {
      return a == flag || (a.starts_with(flag) && a[flag.size()] == '=');
    });
  };
  if (::geteuid() == 0 && (has("--exec") || has("--raw-exec")) && !has("--user") &&
      !has("--allow-root"))
    argv.push_back("--allow-root");
  proc_ = std::make_unique<Process>(argv);
  while (urls_.size() < listeners) {
    auto line = proc_->read_line(15s);
    if (!line) {
      auto err = proc_->read_all_stderr(1s);
      throw std::runtime_error("server did not start: " + err);
    }
    const std::string prefix = "listening on ";
    if (line->rfind(prefix, 0) == 0) urls_.push_back(line->substr(prefix.size()));
  }
  const bool tls = std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a == "--tls" || a == "--tls-only" || a.rfind("tls://", 0) == 0 ||
           a.rfind("tls+unix://", 0) == 0;
  });
  if (tls) {
    auto line = proc_->read_line(15s);
    const std::string prefix = "fingerprint ";
    if (!line || line->rfind(prefix, 0) != 0)
      throw std::runtime_error("no fingerprint line after the listeners: " +
                               line.value_or("(none)"));
    fingerprint_ = line->substr(prefix.size());
  }
  if (has("--metrics")) {
    auto line = proc_->read_line(15s);
    const std::string prefix = "metrics on ";
    if (!line || line->rfind(prefix, 0) != 0)
      throw std::runtime_error("no \"metrics on\" line after the listeners: " +
                               line.value_or("(none)"));
    metrics_url_ = line->substr(prefix.size());
  }
  drain_ = std::thread([this] {
    for (;;) {
      auto chunk = proc_->read_stderr_some(std::chrono::hours(24));
      std::lock_guard lock(mu_);
      if (!chunk) {
        err_done_ = true;
        grew_.notify_all();
        return;
      }
      err_ += *chunk;
      grew_.notify_all();
    }
  });
}

std::string TestServer::stderr_text() {
  std::lock_guard lock(mu_);
  return err_;
}

bool TestServer::wait_stderr(std::string_view needle, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return grew_.wait_for(lock, timeout, [&] {
    return err_.find(needle) != std::string::npos || err_done_;
  }) && err_.find(needle) != std::string::npos;
}

TestServer::~TestServer() {
  if (proc_) {
    proc_->signal(SIGTERM);
    if (!proc_->wait(5s)) {
      proc_->signal(SIGKILL);
      proc_->wait(5s);
    }
  }
  if (drain_.joinable()) drain_.join();
}

int TestServer::port(std::size_t i) const {
  const auto& u = urls_.at(i);
  return std::stoi(u.substr(u.rfind(':') + 1));
}

ExitStatus TestServer::stop(std::chrono::milliseconds timeout) {
  proc_->signal(SIGTERM);
  auto st = proc_->wait(timeout);
  if (!st) {
    ADD_FAILURE() << "server did not exit within " << timeout.count() << " ms of SIGTERM";
    proc_->signal(SIGKILL);
    return *proc_->wait(5s);
  }
  return *st;
}

}  // namespace duplex::test
