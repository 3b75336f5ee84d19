// ddpipe::core — the path patterns of HTTP route tables (serve's model API, ui's dashboard), e.g.
// "/v1/models/:name:predict", "/v2/models/:name[/versions/:version]/infer" or "/*path".
//
// A pattern and a path are compared segment by segment ('/'-separated). A pattern segment that
// starts with ':' is a parameter: its name is the letters, digits and '_' that follow, and the
// rest of the segment is a literal suffix (":name:predict" matches "m:predict" with name "m").
// A parameter matches a non-empty value without '/'. A last segment "*name" matches the rest of
// the path, any number of segments ("a/b.js", or "" for a path that ends where it begins). Other
// segments must be equal. One part in brackets may be present or absent as a whole.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace ddpipe::core {

using PathParams = std::map<std::string, std::string>;

// Whether `path` matches `pattern` (with its optional part first, then without). On a match,
// `params` holds the parameters found (those of an absent optional part are not set); otherwise
// it is left as it was.
bool match_path(std::string_view pattern, std::string_view path, PathParams& params);

// The pattern without its optional part ("/v2/models/:name/infer"): the metrics label of the
// requests it matches.
std::string pattern_label(std::string_view pattern);

}  // namespace ddpipe::core
