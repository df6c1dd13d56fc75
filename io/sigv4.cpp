#include "io/sigv4.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "io/crypto.hpp"

namespace mneme::sigv4 {
namespace {

std::string trim_spaces(std::string_view v) {
  // Leading and trailing spaces removed, inner runs of spaces folded to one.
  std::string out;
  bool space = false;
  for (const char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// "k=v&..." sorted by name, then value (both already encoded).
std::string canonical_query(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> params;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const auto item = q.substr(0, amp);
    const auto eq = item.find('=');
    params.emplace_back(std::string(item.substr(0, eq)),
                        eq == std::string_view::npos ? "" : std::string(item.substr(eq + 1)));
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    out += (out.empty() ? "" : "&") + k + "=" + v;
  }
  return out;
}

std::vector<std::uint8_t> bytes(const crypto::Digest& d) {
  return {d.begin(), d.end()};
}

}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Signed sign(const Request& r, const Credentials& c, const std::string& region,
            const std::string& service, const std::string& amz_date) {
  std::vector<std::pair<std::string, std::string>> headers = r.headers;
  headers.emplace_back("host", r.host);
  for (auto& [name, value] : headers) {
    for (auto& ch : name) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
    value = trim_spaces(value);
  }
  std::sort(headers.begin(), headers.end());
  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }
  Signed s;
  s.canonical_request = r.method + "\n" + (r.path.empty() ? "/" : r.path) + "\n" +
                        canonical_query(r.query) + "\n" + canonical_headers + "\n" +
                        signed_headers + "\n" + kEmptyPayload;
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = date + "/" + region + "/" + service + "/aws4_request";
  s.string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" +
                     crypto::hex(crypto::sha256(s.canonical_request));
  const std::string secret = "AWS4" + c.secret_key;
  auto key = bytes(crypto::hmac_sha256(
      {reinterpret_cast<const std::uint8_t*>(secret.data()), secret.size()}, date));
  key = bytes(crypto::hmac_sha256(key, region));
  key = bytes(crypto::hmac_sha256(key, service));
  key = bytes(crypto::hmac_sha256(key, "aws4_request"));
  const std::string signature = crypto::hex(crypto::hmac_sha256(key, s.string_to_sign));
  s.authorization = "AWS4-HMAC-SHA256 Credential=" + c.access_key + "/" + scope +
                    ", SignedHeaders=" + signed_headers + ", Signature=" + signature;
  return s;
}

}  // namespace mneme::sigv4
