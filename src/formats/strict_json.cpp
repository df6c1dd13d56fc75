#include "src/formats/strict_json.hpp"

#include <string>
#include <unordered_set>
#include <vector>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>

#include "mneme/error.hpp"

namespace mneme {
namespace {

namespace json = boost::json;

// A basic_parser handler that only tracks object keys, one set per open object.
struct DuplicateKeyCheck {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  std::vector<std::unordered_set<std::string>> open_objects;
  std::string key;
  std::string duplicate;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    open_objects.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    open_objects.pop_back();
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key.append(s.data(), s.size());
    const bool fresh = open_objects.back().insert(key).second;
    if (!fresh) {
      duplicate = key;
      ec = json::error::syntax;  // any code: the duplicate is reported by name below
    }
    key.clear();
    return fresh;
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

}  // namespace

json::value parse_strict_json(std::string_view text, std::string_view what, unsigned max_depth) {
  json::parse_options opts;
  opts.max_depth = max_depth;

  json::basic_parser<DuplicateKeyCheck> check(opts);
  json::error_code ec;
  check.write_some(false, text.data(), text.size(), ec);
  if (!check.handler().duplicate.empty()) {
    fail(ErrorKind::parse,
         std::string(what) + ": duplicate key \"" + printable(check.handler().duplicate) + "\"");
  }
  if (ec) fail(ErrorKind::parse, std::string(what) + ": invalid JSON (" + ec.message() + ")");

  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opts);
  if (ec) fail(ErrorKind::parse, std::string(what) + ": invalid JSON (" + ec.message() + ")");
  return v;
}

}  // namespace mneme
