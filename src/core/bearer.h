// ddpipe::core — bearer-token checks for the HTTP services (`ddpipe serve`, `ddpipe ui`): one
// implementation, compared in constant time, so that every endpoint that needs the token checks
// it the same way.
#pragma once

#include <string>

namespace ddpipe::core {

// Whether `a` equals `b`, in time that depends only on their sizes (not on where they differ).
bool constant_time_equal(const std::string& a, const std::string& b);

// Whether an Authorization header value ("Bearer <token>", the scheme in any case of its first
// letter) carries `token`. An empty `token` means no auth is configured: always true. Pure.
bool bearer_authorized(const std::string& authorization, const std::string& token);

}  // namespace ddpipe::core
