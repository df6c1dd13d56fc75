#include "io/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io/curl_api.hpp"
#include "mneme/error.hpp"

namespace mneme::http {
namespace {

namespace asio = boost::asio;
constexpr std::size_t kErrorBodyCap = 64 << 10;

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// One transfer: the request, what came back, and its curl handle.
struct Transfer {
  explicit Transfer(Request r) : request(std::move(r)) {}
  ~Transfer() {
    if (easy) curl().easy_cleanup(easy);
    if (header_list) curl().slist_free_all(header_list);
  }
  Request request;
  Response response;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  std::string range;
  std::optional<asio::steady_timer> done;  // cancelled when the transfer completes
  bool finished = false;
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t.response.headers.clear();  // a new response (after a redirect or a 100)
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = trim(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = trim(line.substr(colon + 1));
    auto [it, fresh] = t.response.headers.emplace(std::move(name), value);
    if (!fresh) it->second += ", " + value;
  }
  return size * n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t len = size * n;
  long status = 0;
  curl().easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) {
    auto& body = t.request.body;
    if (len > body.size() - t.response.body_bytes) {
      t.response.overflow = true;
      return 0;  // aborts the transfer: never a byte past the caller's buffer
    }
    std::memcpy(body.data() + t.response.body_bytes, data, len);
    t.response.body_bytes += len;
  } else {
    const std::size_t keep = std::min(len, kErrorBodyCap - t.response.error_body.size());
    t.response.error_body.append(data, keep);
  }
  return len;
}

// A curl option that must take: a failure here is a build or setup defect.
template <class T>
void set(CURL* e, CURLoption option, T value) {
  if (curl().easy_setopt(e, option, value) != CURLE_OK) {
    fail(ErrorKind::network, "libcurl refused option " + std::to_string(option));
  }
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

void configure(Transfer& t) {
  t.easy = curl().easy_init();
  if (!t.easy) fail(ErrorKind::network, "libcurl could not make a transfer");
  CURL* e = t.easy;
  const Request& r = t.request;
  set(e, CURLOPT_URL, r.url.c_str());
  set(e, CURLOPT_PRIVATE, static_cast<void*>(&t));
  set(e, CURLOPT_ERRORBUFFER, t.error);
  set(e, CURLOPT_NOSIGNAL, 1L);
  // Protocols by name since libcurl 7.85; the bit masks before it.
  if (curl().easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
    set(e, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    set(e, CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  } else {
    set(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  }
  set(e, CURLOPT_PATH_AS_IS, 1L);  // a key with ./ or ../ is a name, not a path to squash
  set(e, CURLOPT_FOLLOWLOCATION, 1L);  // credentials stay with the first host
  set(e, CURLOPT_MAXREDIRS, 10L);
  set(e, CURLOPT_USERAGENT, "mneme/0.1");
  set(e, CURLOPT_TCP_KEEPALIVE, 1L);
  // Fewer, larger receives: curl's 16 KiB default costs a syscall and a
  // callback per 16 KiB, which at GB/s is the io thread's whole time.
  set(e, CURLOPT_BUFFERSIZE, 512L << 10);
  set(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.timeouts.connect.count()));
  set(e, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(r.timeouts.low_speed_bytes));
  set(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(r.timeouts.low_speed_time.count()));
  set(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeouts.total.count()));
  if (const char* ca = env("CURL_CA_BUNDLE") ? env("CURL_CA_BUNDLE") : env("AWS_CA_BUNDLE")) {
    set(e, CURLOPT_CAINFO, ca);
  }
  for (const auto& h : r.headers) {
    curl_slist* next = curl().slist_append(t.header_list, h.c_str());
    if (!next) fail(ErrorKind::limit, "out of memory for HTTP headers");
    t.header_list = next;
  }
  // Bytes as stored: a compressed ranged response could not be placed.
  curl_slist* next = curl().slist_append(t.header_list, "Accept-Encoding: identity");
  if (!next) fail(ErrorKind::limit, "out of memory for HTTP headers");
  t.header_list = next;
  set(e, CURLOPT_HTTPHEADER, t.header_list);
  if (r.range) {
    t.range = std::to_string(r.range->first) + "-" + std::to_string(r.range->second);
    set(e, CURLOPT_RANGE, t.range.c_str());
  }
  if (r.no_body) set(e, CURLOPT_NOBODY, 1L);
  if (!r.method.empty()) set(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  set(e, CURLOPT_HEADERFUNCTION, on_header);
  set(e, CURLOPT_HEADERDATA, static_cast<void*>(&t));
  set(e, CURLOPT_WRITEFUNCTION, on_body);
  set(e, CURLOPT_WRITEDATA, static_cast<void*>(&t));
}

void collect(Transfer& t, CURLcode code) {
  curl().easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &t.response.status);
  char* url = nullptr;
  if (curl().easy_getinfo(t.easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url) {
    t.response.effective_url = url;
  }
  t.response.curl_code = code;
  if (code != CURLE_OK) {
    t.response.curl_error = t.error[0] ? t.error : curl().easy_strerror(code);
  }
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      t.response.transient = true;
      break;
    default:
      break;
  }
  t.finished = true;
}

// The curl multi handle of one io_context, driven by its reactor and a timer.
class CurlService : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;

  explicit CurlService(asio::execution_context& ctx) : service(ctx) {
    multi_ = curl().multi_init();
    if (!multi_) fail(ErrorKind::network, "libcurl could not make a multi handle");
    curl().multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl().multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl().multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, on_timer);
    curl().multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl().multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
  }
  ~CurlService() override { release_all(); }

  void shutdown() override {
    release_all();
    timer_.reset();  // before the timer's own service goes
  }

  // The executor its timer and sockets use: the first caller's (every caller
  // runs on this context).
  void bind(const asio::any_io_executor& ex) {
    if (!timer_) {
      executor_ = ex;
      timer_.emplace(ex);
    }
  }

  void set_max_host_connections(long n) {
    curl().multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, n);
  }

  void add(const std::shared_ptr<Transfer>& t) {
    configure(*t);
    active_.emplace(t->easy, t);
    if (curl().multi_add_handle(multi_, t->easy) != CURLM_OK) {
      active_.erase(t->easy);
      fail(ErrorKind::network, "libcurl could not start a transfer");
    }
  }

 private:
  struct Socket {
    Socket(const asio::any_io_executor& ex, curl_socket_t fd, std::uint64_t g)
        : descriptor(ex, fd), generation(g) {}
    asio::posix::stream_descriptor descriptor;  // curl's socket, never closed by Asio
    std::uint64_t generation;
    int what = 0;
    bool reading = false;
    bool writing = false;
  };

  // (No exception may cross into libcurl: -1 makes it fail the transfer.)
  static int on_socket(CURL*, curl_socket_t s, int what, void* self, void*) noexcept {
    auto& svc = *static_cast<CurlService*>(self);
    try {
      if (what == CURL_POLL_REMOVE) {
        svc.forget(s);
        return 0;
      }
      auto& sock = svc.sockets_[s];
      if (!sock) sock = std::make_unique<Socket>(svc.executor_, s, ++svc.generations_);
      sock->what = what;
      svc.arm(s);
      return 0;
    } catch (...) {
      return -1;
    }
  }

  static int on_timer(CURLM*, long ms, void* self) noexcept {
    auto& svc = *static_cast<CurlService*>(self);
    try {
      return svc.set_timer(ms);
    } catch (...) {
      return -1;
    }
  }

  int set_timer(long ms) {
    auto& svc = *this;
    svc.timer_->cancel();
    if (ms >= 0) {
      // Never re-entered from here: even a 0 ms timeout completes through the context.
      svc.timer_->expires_after(std::chrono::milliseconds(ms));
      svc.timer_->async_wait([&svc](boost::system::error_code ec) {
        if (ec) return;
        int running = 0;
        curl().multi_socket_action(svc.multi_, CURL_SOCKET_TIMEOUT, 0, &running);
        svc.check_done();
      });
    }
    return 0;
  }

  void arm(curl_socket_t s) {
    Socket& k = *sockets_.at(s);
    const auto handler = [this, s, g = k.generation](int flag) {
      return [this, s, g, flag](boost::system::error_code ec) { ready(s, g, flag, ec); };
    };
    if ((k.what & CURL_POLL_IN) && !k.reading) {
      k.reading = true;
      k.descriptor.async_wait(asio::posix::descriptor_base::wait_read, handler(CURL_CSELECT_IN));
    }
    if ((k.what & CURL_POLL_OUT) && !k.writing) {
      k.writing = true;
      k.descriptor.async_wait(asio::posix::descriptor_base::wait_write, handler(CURL_CSELECT_OUT));
    }
  }

  void ready(curl_socket_t s, std::uint64_t generation, int flag, boost::system::error_code ec) {
    auto it = sockets_.find(s);
    if (it == sockets_.end() || it->second->generation != generation) return;  // gone
    Socket& k = *it->second;
    (flag == CURL_CSELECT_IN ? k.reading : k.writing) = false;
    if (ec) return;
    if (!(k.what & (flag == CURL_CSELECT_IN ? CURL_POLL_IN : CURL_POLL_OUT))) return;
    int running = 0;
    curl().multi_socket_action(multi_, s, flag, &running);
    check_done();
    it = sockets_.find(s);
    if (it != sockets_.end() && it->second->generation == generation) arm(s);
  }

  void forget(curl_socket_t s) {
    const auto it = sockets_.find(s);
    if (it == sockets_.end()) return;
    boost::system::error_code ignored;
    it->second->descriptor.cancel(ignored);
    it->second->descriptor.release();  // curl closes it
    sockets_.erase(it);
  }

  void check_done() {
    int left = 0;
    while (CURLMsg* m = curl().multi_info_read(multi_, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL* e = m->easy_handle;
      const CURLcode code = m->data.result;
      const auto it = active_.find(e);
      if (it == active_.end()) continue;
      const auto t = it->second;
      active_.erase(it);
      curl().multi_remove_handle(multi_, e);
      collect(*t, code);
      t->done->cancel();
    }
  }

  void release_all() {
    for (auto& [s, k] : sockets_) {
      boost::system::error_code ignored;
      k->descriptor.cancel(ignored);
      k->descriptor.release();
    }
    sockets_.clear();
    for (auto& [e, t] : active_) {
      curl().multi_remove_handle(multi_, e);
      collect(*t, CURLE_ABORTED_BY_CALLBACK);
    }
    active_.clear();
    if (multi_) {
      curl().multi_cleanup(multi_);
      multi_ = nullptr;
    }
  }

  asio::any_io_executor executor_;
  CURLM* multi_ = nullptr;
  std::optional<asio::steady_timer> timer_;
  std::unordered_map<curl_socket_t, std::unique_ptr<Socket>> sockets_;
  std::unordered_map<CURL*, std::shared_ptr<Transfer>> active_;
  std::uint64_t generations_ = 0;
};

asio::execution_context::id CurlService::id;

CurlService& service_of(const asio::any_io_executor& ex) {
  auto& service = asio::use_service<CurlService>(asio::query(ex, asio::execution::context));
  service.bind(ex);
  return service;
}

}  // namespace

asio::awaitable<Response> perform(asio::any_io_executor executor, Request request) {
  auto& service = service_of(executor);
  auto t = std::make_shared<Transfer>(std::move(request));
  t->done.emplace(executor, asio::steady_timer::time_point::max());
  service.add(t);
  boost::system::error_code ec;  // operation_aborted: the transfer completed
  while (!t->finished) {
    co_await t->done->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return std::move(t->response);
}

Response perform_blocking(Request request) {
  Transfer t(std::move(request));
  configure(t);
  const CURLcode code = curl().easy_perform(t.easy);
  collect(t, code);
  return std::move(t.response);
}

void set_max_host_connections(asio::any_io_executor executor, long n) {
  service_of(executor).set_max_host_connections(n);
}

}  // namespace mneme::http
