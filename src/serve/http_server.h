// ddpipe::serve — the HTTP/1.1 transport (Debian's cpp-httplib, kept inside http_server.cpp):
// a listener and a pool of worker threads that turn requests into Api::handle() calls. Each
// worker serves one connection at a time (keep-alive; idle connections close after 5 s); a
// connection closes after a refused request (body over the limit, timeout, malformed), so that
// the unread rest of a body is never taken for a next request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "serve/api.h"

namespace ddpipe::serve {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0 = any free port
  int64_t threads = 64;               // connections served at once
  size_t max_body_bytes = 16u << 20;  // 413 beyond
  double read_timeout_s = 10.0;       // for a whole request, from its first byte (408)
  double write_timeout_s = 10.0;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Api& api);  // `api` must outlive the server
  ~HttpServer();                                    // shutdown()

  // Binds and answers on background threads; returns the port. Throws core::Error(kUsage)
  // when the address cannot be bound.
  int start();
  // Stops accepting connections, closes idle ones, and returns once every request in flight has
  // been answered. Idempotent.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ddpipe::serve
