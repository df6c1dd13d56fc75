#include "io/curl_api.hpp"

#include <mutex>
#include <string>

#include "mneme/error.hpp"
#include "src/core/dynamic_library.hpp"

namespace mneme::http {
namespace {

CurlApi load() {
  const core::DynamicLibrary lib =
      core::DynamicLibrary::open({"libcurl.so.4"}, "HTTP sources need libcurl (libcurl.so.4)");
  CurlApi api{};
  const auto bind = [&lib](auto& fn, const char* name) { lib.bind(fn, name); };
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
