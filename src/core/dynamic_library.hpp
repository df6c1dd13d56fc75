// A shared library loaded at run time (dlopen), so that mneme links nothing
// it may never use: libcurl, libcrypto, libcudart. Loaded once, never
// unloaded (its functions stay referenced for the life of the process).
#pragma once

#include <dlfcn.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "mneme/error.hpp"

namespace mneme::core {

class DynamicLibrary {
 public:
  // The first of `names` that loads (a name holding '/' is a path); `purpose`
  // says in the error what needed it: Error{unsupported} when none loads.
  static DynamicLibrary open(std::initializer_list<const char*> names, std::string_view purpose) {
    std::string tried;
    for (const char* name : names) {
      if (name == nullptr || *name == '\0') {
        continue;
      }
      if (void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
        return DynamicLibrary(handle, name);
      }
      const char* why = dlerror();
      tried += std::string(tried.empty() ? "" : "; ") + (why ? why : name);
    }
    fail(ErrorKind::unsupported,
         std::string(purpose) + ": " + (tried.empty() ? "no library named" : tried));
  }

  // Points `fn` at `symbol`, typed as the caller declared it.
  template <class Fn>
  void bind(Fn*& fn, const char* symbol) const {
    void* address = dlsym(handle_, symbol);
    if (address == nullptr) {
      fail(ErrorKind::unsupported, name_ + " lacks " + symbol);
    }
    fn = reinterpret_cast<Fn*>(address);
  }

  const std::string& name() const { return name_; }

 private:
  DynamicLibrary(void* handle, std::string name) : handle_(handle), name_(std::move(name)) {}
  void* handle_;
  std::string name_;
};

}  // namespace mneme::core
