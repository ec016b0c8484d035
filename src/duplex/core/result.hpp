// Result<T>: a value, or the error that prevented it (a code plus a one-line detail).
// The one way duplex reports an error below the apps' edge: no out-parameters, no `why` strings.
#pragma once

#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace duplex {

/// Why something failed: a code that callers branch on, and a detail that people read.
/// `detail` is one line, already naming what failed ("cannot listen on tcp://…: address in use");
/// when empty, message() falls back to the code's own text.
struct Failure {
  std::error_code code;
  std::string detail;

  std::string message() const { return detail.empty() ? code.message() : detail; }
};

namespace detail {
/// Error enums a Result takes directly: our errc, asio's, and std::errc.
template <class E>
inline constexpr bool is_error_enum_v =
    std::is_error_code_enum_v<E> || std::is_error_condition_enum_v<E>;

template <class E>
std::error_code to_error_code(E e) {
  if constexpr (std::is_same_v<E, std::error_code>) {
    return e;
  } else {
    using std::make_error_code;  // std::errc; other enums are found by ADL
    return make_error_code(e);
  }
}
}  // namespace detail

/// Builds a Failure from an error_code or an error enum, with an optional one-line detail.
template <class E>
Failure fail(E e, std::string detail = {}) {
  return Failure{detail::to_error_code(e), std::move(detail)};
}

/// Holds either a T or a Failure. Truthy when it holds a value.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Failure f) : v_(std::move(f)) {}              // NOLINT: implicit by design
  Result(std::error_code ec) : v_(Failure{ec, {}}) {}  // NOLINT: implicit by design
  template <class E, class = std::enable_if_t<detail::is_error_enum_v<E>>>
  Result(E e) : v_(Failure{detail::to_error_code(e), {}}) {}  // NOLINT: implicit by design

  explicit operator bool() const noexcept { return v_.index() == 0; }
  bool ok() const noexcept { return v_.index() == 0; }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  /// The error code; empty when the result holds a value.
  std::error_code error() const noexcept { return ok() ? std::error_code{} : std::get<1>(v_).code; }
  /// The whole failure (only when !ok()).
  const Failure& failure() const& { return std::get<1>(v_); }
  Failure&& failure() && { return std::get<1>(std::move(v_)); }
  /// One line for a person: the detail, or the code's text. Empty when ok().
  std::string message() const { return ok() ? std::string() : std::get<1>(v_).message(); }

 private:
  std::variant<T, Failure> v_;
};

/// Success or a Failure, for operations that produce no value.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Failure f) : f_(std::move(f)), failed_(true) {}                      // NOLINT: implicit
  Result(std::error_code ec) : f_{ec, {}}, failed_(static_cast<bool>(ec)) {}  // NOLINT: implicit
  template <class E, class = std::enable_if_t<detail::is_error_enum_v<E>>>
  Result(E e) : f_{detail::to_error_code(e), {}}, failed_(true) {}  // NOLINT: implicit by design

  explicit operator bool() const noexcept { return !failed_; }
  bool ok() const noexcept { return !failed_; }
  std::error_code error() const noexcept { return failed_ ? f_.code : std::error_code{}; }
  const Failure& failure() const& { return f_; }
  Failure&& failure() && { return std::move(f_); }
  std::string message() const { return failed_ ? f_.message() : std::string(); }

 private:
  Failure f_;
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace duplex
