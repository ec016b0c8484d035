// UpperPipeline implementation: a writer that runs ahead, a reader that matches replies in order.
#include "duplex/client/upper_pipeline.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "duplex/core/errors.hpp"
#include "duplex/wire/frame.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::client {
namespace {

using namespace asio::experimental::awaitable_operators;
using net::use_tuple;

// Requests gather in one buffer and go out in one write once this much is there (or at flush()):
// one system call for hundreds of short lines.
constexpr std::size_t kFlushAt = 64 * 1024;
constexpr std::size_t kReadChunk = 64 * 1024;
// Replies larger than this are refused whatever the server announces (as Connection does).
constexpr std::uint32_t kMaxReplyFrame = 64u << 20;

}  // namespace

UpperPipeline::UpperPipeline(Connection& conn, Sink sink, Window window)
    : conn_(conn),
      sink_(std::move(sink)),
      window_(window),
      progress_(conn.stream().get_executor(), 1) {}

Status UpperPipeline::stopped(Failure f) {
  if (!failed_) failed_ = std::move(f);
  notify();
  return *failed_;
}

void UpperPipeline::notify() noexcept {
  progress_.try_send(std::error_code{}, true);  // full: a wake-up is already waiting to be taken
}

awaitable<Status> UpperPipeline::wait_progress() {
  auto [ec, unused] = co_await progress_.async_receive(use_tuple);
  if (failed_) co_return *failed_;
  if (ec) co_return fail(ec, "cancelled");
  co_return Status{};
}

awaitable<Status> UpperPipeline::send(std::string_view msg) {
  if (failed_) co_return *failed_;
  if (conn_.framed() && msg.size() > conn_.welcome().max_frame)
    co_return fail(
        errc::frame_too_large,
        fmt::format("message of {} bytes is larger than the server's frame limit ({} bytes)",
                    msg.size(), conn_.welcome().max_frame));
  // A message larger than the byte window still goes, alone, once nothing else is owed.
  while (pending_.size() >= window_.max_messages ||
         (owed_bytes_ > 0 && owed_bytes_ + msg.size() > window_.max_bytes)) {
    if (auto f = co_await flush(); !f) co_return f;
    if (auto w = co_await wait_progress(); !w) co_return w;
  }
  pending_.push_back({msg.size(), !msg.empty()});
  if (msg.empty()) co_return hand_on_ready();
  owed_bytes_ += msg.size();
  if (conn_.framed())
    wire::encode_frame(wire::MsgType::upper_request, as_bytes(msg), out_);
  else
    out_.insert(out_.end(), as_bytes(msg).begin(), as_bytes(msg).end());
  if (out_.size() >= kFlushAt) co_return co_await flush();
  co_return Status{};
}

awaitable<Status> UpperPipeline::flush() {
  if (failed_) co_return *failed_;
  if (out_.empty()) co_return Status{};
  Bytes b = std::exchange(out_, {});
  auto [ec, n] = co_await conn_.stream().write(asio::buffer(b));
  if (ec) {
    const auto& url = conn_.endpoint().url();
    co_return stopped(fail(ec, fmt::format("connection to {} lost: {}", url, ec.message())));
  }
  // The buffer is used again: a steady stream of requests does not allocate.
  b.clear();
  if (out_.empty()) out_.swap(b);
  co_return Status{};
}

awaitable<Status> UpperPipeline::drain() {
  if (auto f = co_await flush(); !f) co_return f;
  while (!pending_.empty())
    if (auto w = co_await wait_progress(); !w) co_return w;
  co_return failed_ ? Status(*failed_) : Status{};
}

Status UpperPipeline::hand_on_ready() {
  while (!pending_.empty() && !pending_.front().sent) {
    pending_.pop_front();
    if (!sink_.reply({})) return stopped(fail(std::errc::broken_pipe, "cannot write the replies"));
    if (pending_.empty() && !sink_.idle())
      return stopped(fail(std::errc::broken_pipe, "cannot write the replies"));
  }
  return Status{};
}

Status UpperPipeline::take_replies() {
  const auto& url = conn_.endpoint().url();
  for (;;) {
    if (auto h = hand_on_ready(); !h) return h;
    std::string_view reply;
    std::size_t used = 0;
    if (conn_.framed()) {
      const auto d = wire::decode_frame(in_.readable(), kMaxReplyFrame);
      if (d.status == wire::DecodeStatus::need_more) break;
      if (d.status == wire::DecodeStatus::error)
        return stopped(fail(d.error, fmt::format("bad frame from {}: {}", url, d.error.message())));
      if (d.type == wire::MsgType::error) {
        auto e = wire::decode_error(d.payload);
        if (!e)
          return stopped(fail(errc::bad_message, fmt::format("{} sent a malformed ERROR", url)));
        const auto code = make_error_code(static_cast<errc>(e->code));
        return stopped(
            fail(code, fmt::format("{}: {}", url, e->text.empty() ? code.message() : e->text)));
      }
      if (d.type != wire::MsgType::upper_reply || pending_.empty())
        return stopped(fail(
            errc::unexpected_message,
            fmt::format("{} sent {} when no upper_reply was owed", url, wire::type_name(d.type))));
      reply = as_chars(d.payload);
      used = d.consumed;
    } else {
      const auto have = in_.readable();
      if (pending_.empty()) {
        if (have.empty()) break;
        return stopped(fail(errc::unexpected_message,
                            fmt::format("{} sent {} bytes that answer nothing we sent (is it an "
                                        "upper server?)",
                                        url, have.size())));
      }
      const std::size_t want = pending_.front().size;
      if (have.size() < want) break;
      reply = as_chars(have.first(want));
      used = want;
    }
    owed_bytes_ -= pending_.front().size;
    pending_.pop_front();
    const bool ok = sink_.reply(reply) && (!pending_.empty() || sink_.idle());
    in_.consume(used);
    if (!ok) return stopped(fail(std::errc::broken_pipe, "cannot write the replies"));
  }
  return Status{};
}

awaitable<Status> UpperPipeline::receive() {
  const auto& url = conn_.endpoint().url();
  auto& s = conn_.stream();
  for (;;) {
    const auto space = in_.prepare(kReadChunk);
    const auto buf = asio::buffer(space.data(), space.size());
    net::IoResult r;
    if (owed_bytes_ > 0 && window_.timeout.count() > 0) {
      asio::steady_timer timer(s.get_executor(), window_.timeout);
      auto raced = co_await (s.read_some(buf) || timer.async_wait(use_tuple));
      if (raced.index() == 1)
        co_return stopped(fail(std::errc::timed_out, fmt::format("no reply from {} within {} ms",
                                                                 url, window_.timeout.count())));
      r = std::get<0>(raced);
    } else {
      r = co_await s.read_some(buf);
    }
    if (r.ec == asio::error::operation_aborted) co_return fail(r.ec, "cancelled");
    if (r.ec == asio::error::eof)
      co_return stopped(fail(r.ec, fmt::format("{} closed the connection", url)));
    if (r.ec)
      co_return stopped(fail(r.ec, fmt::format("connection to {} lost: {}", url, r.ec.message())));
    in_.commit(r.n);
    if (auto t = take_replies(); !t) co_return t;
    notify();
  }
}

}  // namespace duplex::client
