// Values held on the heap behind a pointer-sized handle and copied deeply:
// for the large, rarely used members of per-tensor structs. A TensorInfo
// exists once per tensor (90 000 times for an MoE checkpoint), so room kept
// inline for what few tensors use is paid by all of them.
#pragma once

#include <memory>
#include <utility>

namespace mneme {

// Always holds a T (a moved-from box is empty and only assigned or destroyed).
template <class T>
class Boxed {
 public:
  Boxed(T value) : held_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit by design
  Boxed(const Boxed& other) : held_(std::make_unique<T>(*other.held_)) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    held_ = std::make_unique<T>(*other.held_);
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  ~Boxed() = default;

  const T& operator*() const { return *held_; }
  T& operator*() { return *held_; }
  const T* operator->() const { return held_.get(); }
  T* operator->() { return held_.get(); }

 private:
  std::unique_ptr<T> held_;
};

// Like std::optional<T>, held on the heap.
template <class T>
class OptionalBox {
 public:
  OptionalBox() = default;
  OptionalBox(const OptionalBox& other)
      : held_(other.held_ ? std::make_unique<T>(*other.held_) : nullptr) {}
  OptionalBox(OptionalBox&&) noexcept = default;
  OptionalBox& operator=(const OptionalBox& other) {
    held_ = other.held_ ? std::make_unique<T>(*other.held_) : nullptr;
    return *this;
  }
  OptionalBox& operator=(OptionalBox&&) noexcept = default;
  OptionalBox& operator=(T value) {
    held_ = std::make_unique<T>(std::move(value));
    return *this;
  }
  ~OptionalBox() = default;

  explicit operator bool() const { return held_ != nullptr; }
  const T& operator*() const { return *held_; }
  const T* operator->() const { return held_.get(); }

 private:
  std::unique_ptr<T> held_;
};

}  // namespace mneme
