#include "io/aws.hpp"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "io/http_client.hpp"
#include "mneme/error.hpp"

namespace mneme::aws {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool truthy(const std::string& v) {
  return v == "true" || v == "TRUE" || v == "True" || v == "1";
}

std::string trim(std::string s) {
  const auto a = s.find_first_not_of(" \t\r");
  const auto b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// key -> value of section `section` in an INI file; empty when absent.
std::map<std::string, std::string> ini_section(const fs::path& file, const std::string& section) {
  std::map<std::string, std::string> out;
  std::ifstream in(file);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      inside = trim(line.substr(1, line.size() - 2)) == section;
      continue;
    }
    const auto eq = line.find('=');
    if (inside && eq != std::string::npos) {
      out[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
    }
  }
  return out;
}

fs::path aws_file(const char* var, const char* name) {
  if (auto v = env(var); !v.empty()) return v;
  return fs::path(env("HOME")) / ".aws" / name;
}

// "<Tag>value</Tag>" of an XML body.
std::string xml_field(const std::string& body, const std::string& tag) {
  const auto a = body.find("<" + tag + ">");
  const auto b = a == std::string::npos ? a : body.find("</" + tag + ">", a);
  return b == std::string::npos ? "" : body.substr(a + tag.size() + 2, b - a - tag.size() - 2);
}

// "key": "value" of a flat JSON object (IMDS answers).
std::string json_field(const std::string& body, const std::string& key) {
  const auto k = body.find("\"" + key + "\"");
  if (k == std::string::npos) return "";
  const auto a = body.find('"', body.find(':', k) + 1);
  const auto b = a == std::string::npos ? a : body.find('"', a + 1);
  return b == std::string::npos ? "" : body.substr(a + 1, b - a - 1);
}

http::Response get(const std::string& url, std::vector<std::string> headers, std::string& body,
                   const OpenOptions& o, std::string method = {}) {
  http::Request r;
  r.url = url;
  r.method = std::move(method);
  r.headers = std::move(headers);
  body.assign(64 << 10, '\0');
  r.body = std::as_writable_bytes(std::span(body));
  r.timeouts.connect = o.connect_timeout;
  http::Response resp = http::perform_blocking(r);
  body.resize(resp.body_bytes);
  if (resp.status < 200 || resp.status >= 300) body = resp.error_body;
  return resp;
}

// Temporary credentials (an STS exchange, the instance metadata service)
// are asked for once per process and kept until five minutes before they
// expire (15 minutes when the answer gives no expiry): a model's sources
// each resolve the chain, and a 163-shard checkpoint must not make 163 STS
// calls. Keyed by everything the answer depends on (for STS the token
// itself, so a rotated token is exchanged afresh); failures are not kept.
struct Temporary {
  sigv4::Credentials credentials;
  std::chrono::system_clock::time_point expires;
};

std::chrono::system_clock::time_point expiry(const std::string& iso8601) {
  std::tm tm{};
  const auto now = std::chrono::system_clock::now();
  if (iso8601.size() < 19 || !::strptime(iso8601.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) {
    return now + std::chrono::minutes(15);
  }
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

template <class Fetch>
std::optional<sigv4::Credentials> temporary(const std::string& key, Fetch&& fetch) {
  static std::mutex mutex;
  static std::map<std::string, Temporary> kept;
  const auto margin = std::chrono::minutes(5);
  {
    const std::lock_guard lock(mutex);
    if (const auto it = kept.find(key); it != kept.end()) {
      if (std::chrono::system_clock::now() + margin < it->second.expires)
        return it->second.credentials;
      kept.erase(it);
    }
  }
  std::optional<Temporary> fresh = fetch();  // unlocked: a network call
  if (!fresh) return std::nullopt;
  const std::lock_guard lock(mutex);
  kept.insert_or_assign(key, *fresh);
  return fresh->credentials;
}

std::string url_encode(std::string_view s) {
  return sigv4::uri_encode(s, false);
}

std::optional<sigv4::Credentials> web_identity(const std::string& region, const OpenOptions& o) {
  const std::string token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), role = env("AWS_ROLE_ARN");
  if (token_file.empty() || role.empty()) return std::nullopt;
  std::ifstream in(token_file);
  const std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (token.empty()) {
    fail(ErrorKind::network, "AWS_WEB_IDENTITY_TOKEN_FILE " + printable(token_file) + " is empty or unreadable");
  }
  std::string endpoint = env("AWS_ENDPOINT_URL_STS");
  if (endpoint.empty()) endpoint = env("AWS_ENDPOINT_URL");
  if (endpoint.empty()) endpoint = "https://sts." + region + ".amazonaws.com";
  std::string session = env("AWS_ROLE_SESSION_NAME");
  if (session.empty()) session = "mneme";
  const std::string url = endpoint + "/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" +
                          url_encode(role) + "&RoleSessionName=" + url_encode(session) +
                          "&WebIdentityToken=" + url_encode(trim(token));
  return temporary(url, [&]() -> std::optional<Temporary> {
    std::string body;
    const auto resp = get(url, {}, body, o);
    if (resp.curl_code != 0 || resp.status != 200) {
      fail(ErrorKind::network,
           "STS AssumeRoleWithWebIdentity for " + printable(role) + " failed: " +
               (resp.curl_code ? resp.curl_error : "HTTP " + std::to_string(resp.status)) + " " +
               printable(xml_field(body, "Message"), 200));
    }
    sigv4::Credentials c{xml_field(body, "AccessKeyId"), xml_field(body, "SecretAccessKey"),
                         xml_field(body, "SessionToken")};
    if (c.access_key.empty() || c.secret_key.empty()) {
      fail(ErrorKind::network, "STS AssumeRoleWithWebIdentity answered no credentials");
    }
    return Temporary{c, expiry(xml_field(body, "Expiration"))};
  });
}

std::optional<sigv4::Credentials> instance_metadata(const OpenOptions& options) {
  if (truthy(env("AWS_EC2_METADATA_DISABLED"))) return std::nullopt;
  std::string endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (endpoint.empty()) endpoint = "http://169.254.169.254";
  while (endpoint.ends_with('/')) endpoint.pop_back();
  OpenOptions quick = options;
  quick.connect_timeout = std::chrono::milliseconds(1000);  // not on EC2: give up fast
  return temporary("imds " + endpoint, [&]() -> std::optional<Temporary> {
    std::string token, role, body;
    auto r = get(endpoint + "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds: 21600"},
                 token, quick, "PUT");
    if (r.curl_code != 0 || r.status != 200) return std::nullopt;
    const std::string auth = "X-aws-ec2-metadata-token: " + token;
    r = get(endpoint + "/latest/meta-data/iam/security-credentials/", {auth}, role, quick);
    role = trim(role.substr(0, role.find('\n')));
    if (r.curl_code != 0 || r.status != 200 || role.empty()) return std::nullopt;
    r = get(endpoint + "/latest/meta-data/iam/security-credentials/" + role, {auth}, body, quick);
    if (r.curl_code != 0 || r.status != 200) return std::nullopt;
    sigv4::Credentials c{json_field(body, "AccessKeyId"), json_field(body, "SecretAccessKey"),
                         json_field(body, "Token")};
    if (c.access_key.empty() || c.secret_key.empty()) return std::nullopt;
    return Temporary{c, expiry(json_field(body, "Expiration"))};
  });
}

Config resolve(const OpenOptions& options) {
  Config c;
  const std::string profile = env("AWS_PROFILE").empty() ? "default" : env("AWS_PROFILE");
  const auto creds_file = ini_section(aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), profile);
  const auto config_file = ini_section(aws_file("AWS_CONFIG_FILE", "config"),
                                       profile == "default" ? "default" : "profile " + profile);
  const auto from_profile = [&](const char* key) -> std::string {
    if (const auto it = creds_file.find(key); it != creds_file.end()) return it->second;
    if (const auto it = config_file.find(key); it != config_file.end()) return it->second;
    return "";
  };
  c.region = env("AWS_REGION");
  if (c.region.empty()) c.region = env("AWS_DEFAULT_REGION");
  if (c.region.empty()) c.region = from_profile("region");
  if (c.region.empty()) c.region = "us-east-1";
  c.endpoint = env("AWS_ENDPOINT_URL_S3");
  if (c.endpoint.empty()) c.endpoint = env("AWS_ENDPOINT_URL");
  while (c.endpoint.ends_with('/')) c.endpoint.pop_back();

  if (options.s3_anonymous || truthy(env("AWS_NO_SIGN_REQUEST"))) return c;
  if (!env("AWS_ACCESS_KEY_ID").empty() && !env("AWS_SECRET_ACCESS_KEY").empty()) {
    c.credentials = sigv4::Credentials{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                                       env("AWS_SESSION_TOKEN")};
    return c;
  }
  if (!from_profile("aws_access_key_id").empty() && !from_profile("aws_secret_access_key").empty()) {
    c.credentials = sigv4::Credentials{from_profile("aws_access_key_id"),
                                       from_profile("aws_secret_access_key"),
                                       from_profile("aws_session_token")};
    return c;
  }
  if ((c.credentials = web_identity(c.region, options))) return c;
  if ((c.credentials = instance_metadata(options))) return c;
  fail(ErrorKind::network,
       "no AWS credentials: looked at AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile \"" +
           printable(profile) + "\" in ~/.aws/credentials and ~/.aws/config, web identity "
           "(AWS_WEB_IDENTITY_TOKEN_FILE) and the instance metadata service; for a public "
           "bucket use --no-sign-request (AWS_NO_SIGN_REQUEST=true)");
}

}  // namespace

Config config(const OpenOptions& options) {
  return resolve(options);
}

}  // namespace mneme::aws
