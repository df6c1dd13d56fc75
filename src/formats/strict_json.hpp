// JSON parsing for untrusted headers: Boost.JSON, plus what it does not check
// by itself. Boost.JSON keeps the last of duplicate keys silently; a header
// that names a tensor twice could smuggle a second definition past another
// reader (hostile-inputs.md §1.2), so duplicates are an error here, compared
// after unescaping ("a" and "\u0061" are the same key).
#pragma once

#include <string_view>

#include <boost/json/value.hpp>

namespace mneme {

// Parses `text` as one JSON document; throws Error{parse} naming `what` on
// malformed JSON, invalid UTF-8, nesting deeper than max_depth, or a
// duplicate key in any object.
boost::json::value parse_strict_json(std::string_view text, std::string_view what,
                                     unsigned max_depth = 64);

}  // namespace mneme
