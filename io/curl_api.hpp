// libcurl, loaded when the first HTTP transfer needs it (dlopen of
// libcurl.so.4) rather than linked: its dependency tree (TLS, HTTP/2, IDN,
// LDAP, SSH, Kerberos: ~30 shared libraries) doubled the start-up time of
// every command, local ones included. Internal to io/http_client.cpp.
#pragma once

#include <curl/curl.h>

namespace mneme::http {

struct CurlApi {
  CURLcode (*global_init)(long flags);
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  CURLcode (*easy_perform)(CURL*);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
  CURLM* (*multi_init)();
  CURLMcode (*multi_setopt)(CURLM*, CURLMoption, ...);
  CURLMcode (*multi_add_handle)(CURLM*, CURL*);
  CURLMcode (*multi_remove_handle)(CURLM*, CURL*);
  CURLMcode (*multi_socket_action)(CURLM*, curl_socket_t, int, int*);
  CURLMsg* (*multi_info_read)(CURLM*, int*);
  CURLMcode (*multi_cleanup)(CURLM*);
};

// Loads and initialises libcurl once; Error{unsupported} naming the library
// when it cannot be loaded.
const CurlApi& curl();

}  // namespace mneme::http
