#include "serve/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "core/strings.h"

namespace ddpipe::serve {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kIdleKeepAlive = std::chrono::seconds(5);  // an idle connection is closed after
constexpr size_t kRequestsPerConnection = 1000;
constexpr auto kLinger = std::chrono::seconds(2);  // reading what a refused client still sends

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Rounded up: a wait until a deadline must not end before it.
int millis(Clock::duration d) {
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
}

bool wait_for(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  while ((r = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
  }
  return r > 0;
}

void address_of(const sockaddr_storage& a, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    port = ntohs(v6.sin6_port);
  }
  ip = text;
}

// One client connection as httplib's request parser reads and writes it: buffered reads, each
// waiting at most the read timeout, and a deadline for the whole request on top, so that a
// client dribbling its headers or body cannot hold a worker thread.
class Connection final : public httplib::Stream {
 public:
  Connection(int fd, Clock::duration read_timeout, Clock::duration write_timeout)
      : fd_(fd), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

  // Waits up to `idle` for the next request; false when there is none or `stopping` is set.
  bool wait_for_request(const std::atomic<bool>& stopping) {
    const auto end = Clock::now() + kIdleKeepAlive;
    while (begin_ == end_ && !stopping) {
      if (Clock::now() >= end) return false;
      if (wait_for(fd_, POLLIN, 50)) return true;
    }
    return !stopping;
  }
  void begin_request() {
    deadline_ = Clock::now() + read_timeout_;
    close_ = false;
  }
  bool expired() const { return Clock::now() >= deadline_; }
  void close_after_response() { close_ = true; }
  bool closing() const { return close_; }

  bool is_readable() const override {
    return begin_ < end_ || wait_for(fd_, POLLIN, read_wait_ms());
  }
  bool is_writable() const override { return wait_for(fd_, POLLOUT, millis(write_timeout_)); }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {
      if (!wait_for(fd_, POLLIN, read_wait_ms())) return -1;
      ssize_t n;
      while ((n = ::recv(fd_, buffer_, sizeof buffer_, 0)) < 0 && errno == EINTR) {
      }
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_ + begin_, n);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    while ((n = ::send(fd_, ptr, size, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
    }
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address_of(a, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address_of(a, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  int read_wait_ms() const {
    return millis(std::min(read_timeout_, std::max(deadline_ - Clock::now(), Clock::duration(0))));
  }

  const int fd_;
  const Clock::duration read_timeout_, write_timeout_;
  Clock::time_point deadline_ = Clock::now();
  bool close_ = false;
  char buffer_[16384];
  size_t begin_ = 0, end_ = 0;
};

// The connection the calling worker thread serves, for handlers that refuse a request before
// reading all of it (the connection must then close) or ask whether its deadline passed.
thread_local Connection* t_connection = nullptr;

void close_after_response() {
  if (t_connection) t_connection->close_after_response();
}

// Closes after a refusal: send FIN, then read for a moment what the client still sends, so that
// closing with unread data (a TCP reset) does not destroy our answer before the client reads it.
void linger_close(int fd) {
  ::shutdown(fd, SHUT_WR);
  const auto end = Clock::now() + kLinger;
  char sink[16384];
  while (wait_for(fd, POLLIN, millis(end - Clock::now()))) {
    if (::recv(fd, sink, sizeof sink, 0) <= 0) break;
  }
  ::close(fd);
}

// httplib's server with our own connection loop (httplib's SSLServer overrides the same hook):
// connections close after refusals, idle ones close at once when draining starts.
class Transport final : public httplib::Server {
 public:
  Transport(const HttpServerOptions& options, const std::atomic<bool>& stopping)
      : read_timeout_(seconds(options.read_timeout_s)),
        write_timeout_(seconds(options.write_timeout_s)),
        stopping_(stopping) {}

 private:
  bool process_and_close_socket(socket_t fd) override {
    bool refused = false;
    {
      Connection conn(fd, read_timeout_, write_timeout_);
      t_connection = &conn;
      for (size_t n = 1; n <= kRequestsPerConnection && conn.wait_for_request(stopping_); ++n) {
        conn.begin_request();
        bool closed = false;
        const bool last = n == kRequestsPerConnection || stopping_;
        if (!process_request(conn, last, closed, nullptr) || closed || conn.closing()) {
          refused = conn.closing();
          break;
        }
      }
      t_connection = nullptr;
    }
    if (refused) {
      linger_close(fd);
    } else {
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
    }
    return true;
  }

  const Clock::duration read_timeout_, write_timeout_;
  const std::atomic<bool>& stopping_;
};

HttpRequest convert(const httplib::Request& req) {
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [key, value] : req.params) r.query.emplace(key, value);
  for (const auto& [name, value] : req.headers) r.headers.emplace(core::to_lower(name), value);
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
  std::atomic<bool> stopping{false};
  Transport server;
  int listen_fd = -1;
  std::thread thread;
  std::atomic<bool> finished{false};

  Impl(HttpServerOptions o, Api& a) : options(std::move(o)), api(a), server(options, stopping) {}

  std::string too_large() const {
    return "request body over the limit of " + mb(options.max_body_bytes) + " (serve.max_body_mb)";
  }

  // Every body is read here as raw bytes, within the size limit and the request's deadline.
  void handle_with_body(const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& reader) {
    HttpRequest r = convert(req);
    // httplib would parse multipart/form-data bodies itself; hide the type from it so that the
    // body arrives raw for serve's own parser (size-limited, fuzzed). `req` is httplib's own
    // non-const object; r keeps the real Content-Type.
    auto& headers = const_cast<httplib::Headers&>(req.headers);
    auto type = headers.find("Content-Type");
    if (type != headers.end()) type->second = "application/octet-stream";

    bool over_limit = false;
    const bool complete = reader([&](const char* data, size_t n) {
      over_limit = r.body.size() + n > options.max_body_bytes;
      if (!over_limit) r.body.append(data, n);
      return !over_limit;
    });
    if (complete) {
      send(api.handle(r), res);
      return;
    }
    // The rest of the body may still be on the wire: answer, then close the connection.
    close_after_response();
    if (over_limit || res.status == 413) {
      send(api.refuse(r, 413, too_large()), res);
    } else if (t_connection && t_connection->expired()) {
      send(api.refuse(r, 408, "timed out reading the request (serve.read_timeout_s)"), res);
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
  // Only for the Keep-Alive header httplib writes: Transport runs the connection loop.
  s.set_keep_alive_max_count(kRequestsPerConnection);
  s.set_keep_alive_timeout(
      std::chrono::duration_cast<std::chrono::seconds>(kIdleKeepAlive).count());
  s.set_payload_max_length(im.options.max_body_bytes);
  // Clients that ask first (curl does for bodies over 1 KiB) learn about a body over the limit
  // before sending it.
  s.set_expect_100_continue_handler([&im](const httplib::Request& req, httplib::Response& res) {
    const std::string length = req.get_header_value("Content-Length");
    if (!length.empty() && std::strtoull(length.c_str(), nullptr, 10) > im.options.max_body_bytes) {
      close_after_response();
      send(im.api.refuse(convert(req), 413, im.too_large()), res);
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
  // What httplib answers itself (malformed request line or headers, URI too long, unknown
  // method) gets the same JSON body, metrics and log line, and the connection closes.
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [&im](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        close_after_response();
        const bool late = t_connection && t_connection->expired();
        const std::string message = late ? "timed out reading the request (serve.read_timeout_s)"
                                    : res.status == 414 ? "request URI too long"
                                    : res.status == 413 ? "request too large"
                                                        : "malformed HTTP request";
        send(im.api.refuse(convert(req), late ? 408 : res.status, message), res);
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
  im.stopping = true;  // idle connections close now, busy ones after their response
  while (!im.server.is_running() && !im.finished) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  im.server.stop();  // closes the listener; the pool joins once every connection is done
  im.thread.join();
}

}  // namespace ddpipe::serve
