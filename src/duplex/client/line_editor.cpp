// LineEditor implementation over libedit's readline-compatible callback interface.
#include "duplex/client/line_editor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include <editline/readline.h>
#include <fmt/format.h>

namespace duplex::client {
namespace {

LineEditor* g_editor = nullptr;  // libedit's handler is a plain function: the one editor
constexpr int kHistoryLines = 1000;

// A descriptor of our own for the readiness wait: Asio makes the descriptors it waits on
// non-blocking, and a dup shares that flag with everyone using the terminal (a `| tee` behind us
// writing to it would then fail with EAGAIN). Opening the terminal again gives a separate one.
int reopen_or_throw(int fd) {
  const int d =
      ::open(fmt::format("/proc/self/fd/{}", fd).c_str(), O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (d < 0) throw std::system_error(errno, std::system_category(), "cannot watch the terminal");
  return d;
}

// libedit reports no end of input when read(2) gives nothing (a terminal that hung up): the fd
// says so itself.
bool hung_up(int fd) noexcept {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0 &&
         (p.revents & POLLIN) == 0;
}

}  // namespace

LineEditor::LineEditor(const asio::any_io_executor& ex, int in_fd, std::FILE* echo,
                       std::string prompt, std::string history_file)
    : in_(ex, reopen_or_throw(in_fd)),
      echo_(echo),
      prompt_(std::move(prompt)),
      history_file_(std::move(history_file)) {
  g_editor = this;
  // Set before libedit initialises itself (its first call): it binds to these streams then.
  rl_outstream = echo_;
  // Signals are the caller's (a signal_set): libedit's own handlers would race it.
  rl_catch_signals = 0;
  using_history();
  stifle_history(kHistoryLines);
  if (!history_file_.empty()) read_history(history_file_.c_str());
}

LineEditor::~LineEditor() {
  leave_editing();
  g_editor = nullptr;
}

void LineEditor::on_line(char* line) {
  LineEditor* e = g_editor;
  // libedit draws the prompt again when this returns; empty, it draws nothing, and the reply is
  // printed before next() shows the prompt for the next line.
  rl_set_prompt("");
  e->done_ = true;
  if (!line) return;
  e->line_.emplace(line);
  std::free(line);
  if (e->line_->empty()) return;
  add_history(e->line_->c_str());
  if (!e->history_file_.empty()) write_history(e->history_file_.c_str());
}

void LineEditor::leave_editing() noexcept {
  if (!editing_) return;
  editing_ = false;
  rl_callback_handler_remove();
}

void LineEditor::interrupt() noexcept {
  if (!editing_) return;
  leave_editing();
  std::fputc('\n', echo_);
  std::fflush(echo_);
}

awaitable<Result<std::optional<std::string>>> LineEditor::next() {
  done_ = false;
  line_.reset();
  rl_callback_handler_install(prompt_.c_str(), &LineEditor::on_line);
  editing_ = true;
  while (!done_) {
    auto [ec] = co_await in_.async_wait(asio::posix::descriptor_base::wait_read, net::use_tuple);
    if (ec) {
      interrupt();  // the line being typed is abandoned: what comes next starts on a line of its
                    // own
      co_return fail(ec, "reading the terminal: " + ec.message());
    }
    if (hung_up(in_.native_handle())) break;
    rl_callback_read_char();
  }
  leave_editing();
  if (!line_) {
    std::fputc('\n', echo_);
    std::fflush(echo_);
  }
  co_return std::move(line_);
}

}  // namespace duplex::client
