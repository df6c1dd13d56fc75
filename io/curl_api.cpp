#include "io/curl_api.hpp"

#include <dlfcn.h>

#include <mutex>
#include <string>

#include "mneme/error.hpp"

namespace mneme::http {
namespace {

CurlApi load() {
  void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    fail(ErrorKind::unsupported, std::string("HTTP sources need libcurl (libcurl.so.4): ") +
                                     (why ? why : "not found"));
  }
  const auto sym = [lib](const char* name) {
    void* f = dlsym(lib, name);
    if (!f) fail(ErrorKind::unsupported, std::string("libcurl.so.4 lacks ") + name);
    return f;
  };
  CurlApi api{};
  const auto bind = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(sym(name));
  };
  bind(api.global_init, "curl_global_init");
  bind(api.easy_init, "curl_easy_init");
  bind(api.easy_setopt, "curl_easy_setopt");
  bind(api.easy_getinfo, "curl_easy_getinfo");
  bind(api.easy_perform, "curl_easy_perform");
  bind(api.easy_cleanup, "curl_easy_cleanup");
  bind(api.easy_strerror, "curl_easy_strerror");
  bind(api.slist_append, "curl_slist_append");
  bind(api.slist_free_all, "curl_slist_free_all");
  bind(api.multi_init, "curl_multi_init");
  bind(api.multi_setopt, "curl_multi_setopt");
  bind(api.multi_add_handle, "curl_multi_add_handle");
  bind(api.multi_remove_handle, "curl_multi_remove_handle");
  bind(api.multi_socket_action, "curl_multi_socket_action");
  bind(api.multi_info_read, "curl_multi_info_read");
  bind(api.multi_cleanup, "curl_multi_cleanup");
  if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fail(ErrorKind::network, "libcurl failed to initialise");
  }
  return api;  // the library stays loaded for the process
}

}  // namespace

const CurlApi& curl() {
  static std::once_flag once;
  static CurlApi api;
  std::call_once(once, [] { api = load(); });
  return api;
}

}  // namespace mneme::http
