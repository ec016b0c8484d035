// Result<T>: a value or a std::error_code, for the pure layers that never throw.
#pragma once

#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace duplex {

/// Holds either a T or the error that prevented it. Truthy when it holds a value.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(std::error_code ec) : v_(ec) {}     // NOLINT: implicit by design
  template <class E, class = std::enable_if_t<std::is_error_code_enum_v<E>>>
  Result(E e) : v_(std::error_code(make_error_code(e))) {}  // NOLINT: implicit by design

  explicit operator bool() const noexcept { return v_.index() == 0; }
  bool ok() const noexcept { return v_.index() == 0; }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  /// The error; an empty error_code when the result holds a value.
  std::error_code error() const noexcept { return ok() ? std::error_code{} : std::get<1>(v_); }

 private:
  std::variant<T, std::error_code> v_;
};

}  // namespace duplex
