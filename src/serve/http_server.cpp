#include "serve/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/error.h"

namespace ddpipe::serve {
namespace {

using Clock = std::chrono::steady_clock;

HttpRequest convert(const httplib::Request& req) {
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [key, value] : req.params) r.query.emplace(key, value);
  for (const auto& [name, value] : req.headers) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace(std::move(lower), value);
  }
  r.remote = req.remote_addr + ":" + std::to_string(req.remote_port);
  return r;
}

void send(const HttpResponse& r, httplib::Response& res) {
  res.status = r.status;
  for (const auto& [name, value] : r.headers) res.set_header(name, value);
  res.set_content(r.body, r.content_type);
}

std::string mb(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%g MB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Api& api;
  httplib::Server server;
  int listen_fd = -1;
  std::thread thread;
  std::atomic<bool> finished{false};

  Impl(HttpServerOptions o, Api& a) : options(std::move(o)), api(a) {}

  // Every body is read here as raw bytes, within the size limit and the read deadline.
  void handle_with_body(const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& reader) {
    HttpRequest r = convert(req);
    // httplib would parse multipart/form-data bodies itself; hide the type from it so that the
    // body arrives raw for serve's own parser (size-limited, fuzzed). `req` is httplib's own
    // non-const object; r keeps the real Content-Type.
    auto& headers = const_cast<httplib::Headers&>(req.headers);
    auto type = headers.find("Content-Type");
    if (type != headers.end()) type->second = "application/octet-stream";

    const auto timeout = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options.read_timeout_s));
    const auto start = Clock::now();
    bool too_large = false, late = false;
    const bool complete = reader([&](const char* data, size_t n) {
      if (r.body.size() + n > options.max_body_bytes) {
        too_large = true;
        return false;
      }
      if (Clock::now() - start > timeout) {
        late = true;
        return false;
      }
      r.body.append(data, n);
      return true;
    });
    if (complete) {
      send(api.handle(r), res);
      return;
    }
    // The rest of the body may still be on the wire: the client must not reuse the connection.
    res.set_header("Connection", "close");
    if (too_large || res.status == 413) {
      send(api.refuse(r, 413,
                      "request body over the limit of " + mb(options.max_body_bytes) +
                          " (serve.max_body_mb)"),
           res);
    } else if (late || Clock::now() - start >= timeout * 9 / 10) {  // a read timed out
      send(api.refuse(r, 408, "timed out reading the request body (serve.read_timeout_s)"), res);
    } else {
      send(api.refuse(r, 400,
                      "could not read the request body (closed early, or malformed "
                      "chunked encoding)"),
           res);
    }
  }
};

HttpServer::HttpServer(HttpServerOptions options, Api& api)
    : impl_(std::make_unique<Impl>(std::move(options), api)) {}

HttpServer::~HttpServer() { shutdown(); }

int HttpServer::start() {
  Impl& im = *impl_;
  httplib::Server& s = im.server;
  const size_t threads = static_cast<size_t>(im.options.threads);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_socket_options([&im](socket_t fd) {
    httplib::default_socket_options(fd);
    im.listen_fd = fd;
  });
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(1000);
  s.set_keep_alive_timeout(5);
  const auto usec = [](double s) { return static_cast<time_t>(s * 1e6) % 1000000; };
  s.set_read_timeout(static_cast<time_t>(im.options.read_timeout_s),
                     usec(im.options.read_timeout_s));
  s.set_write_timeout(static_cast<time_t>(im.options.write_timeout_s),
                      usec(im.options.write_timeout_s));
  s.set_payload_max_length(im.options.max_body_bytes);
  // Clients that ask first (curl does for bodies over 1 KiB) learn about a body over the limit
  // before sending it.
  s.set_expect_100_continue_handler([&im](const httplib::Request& req, httplib::Response& res) {
    const std::string length = req.get_header_value("Content-Length");
    if (!length.empty() && std::strtoull(length.c_str(), nullptr, 10) > im.options.max_body_bytes) {
      send(im.api.refuse(convert(req), 413,
                         "request body over the limit of " + mb(im.options.max_body_bytes) +
                             " (serve.max_body_mb)"),
           res);
      return 413;
    }
    return 100;
  });

  auto plain = [&im](const httplib::Request& req, httplib::Response& res) {
    send(im.api.handle(convert(req)), res);
  };
  auto with_body = [&im](const httplib::Request& req, httplib::Response& res,
                         const httplib::ContentReader& reader) {
    im.handle_with_body(req, res, reader);
  };
  s.Get(".*", plain).Options(".*", plain);
  s.Post(".*", with_body).Put(".*", with_body).Patch(".*", with_body).Delete(".*", with_body);
  // What httplib answers itself (malformed request line, URI too long, unknown method) gets
  // the same JSON body, metrics and log line.
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [&im](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        const std::string message = res.status == 414   ? "request URI too long"
                                    : res.status == 413 ? "request too large"
                                                        : "malformed HTTP request";
        send(im.api.refuse(convert(req), res.status, message), res);
        return httplib::Server::HandlerResponse::Handled;
      }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send(error_response(500, "internal error"), res);
  });

  const std::string& host = im.options.host;
  int port = im.options.port;
  if (port == 0) {
    port = s.bind_to_any_port(host);
  } else if (!s.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    core::fail_usage("cannot listen on " + host + ":" + std::to_string(im.options.port) +
                     " (port in use, or not an address of this machine? see serve.host and "
                     "serve.port)");
  }
  // httplib listens with a backlog of 5; a burst of new connections would be dropped and
  // retried a second later.
  if (im.listen_fd >= 0) ::listen(im.listen_fd, SOMAXCONN);
  im.thread = std::thread([&im] {
    im.server.listen_after_bind();
    im.finished = true;
  });
  return port;
}

void HttpServer::shutdown() {
  Impl& im = *impl_;
  if (!im.thread.joinable()) return;
  while (!im.server.is_running() && !im.finished)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  im.server.stop();  // closes the listener; workers finish their requests, then the pool joins
  im.thread.join();
}

}  // namespace ddpipe::serve
