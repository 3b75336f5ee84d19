#include "http_client.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace ddpipe::serve::fixtures {
namespace {

Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  for (const auto& [k, v] : r->headers) out.headers.emplace(k, v);
  return out;
}

httplib::Client make(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(60);
  c.set_write_timeout(60);
  return c;
}

// Headers and Content-Length bytes of body have arrived.
bool complete_response(const std::string& r) {
  const size_t end = r.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  const size_t at = r.find("Content-Length: ");
  if (at == std::string::npos || at > end) return true;
  return r.size() >= end + 4 + std::stoul(r.substr(at + 16));
}

}  // namespace

std::string Reply::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return "";
}

Reply Client::get(const std::string& path) const { return send("GET", path); }

Reply Client::post(const std::string& path, const std::string& body,
                   const std::string& content_type) const {
  httplib::Client c = make(port_);
  if (!token_.empty()) c.set_bearer_token_auth(token_.c_str());
  return to_reply(c.Post(path.c_str(), body, content_type.c_str()));
}

Reply Client::post_file(const std::string& path, const std::string& field,
                        const std::string& filename, const std::string& bytes) const {
  httplib::Client c = make(port_);
  if (!token_.empty()) c.set_bearer_token_auth(token_.c_str());
  httplib::MultipartFormDataItems items = {{field, bytes, filename, "image/png"}};
  return to_reply(c.Post(path.c_str(), items));
}

Reply Client::send(const std::string& method, const std::string& path,
                   const std::string& body) const {
  httplib::Client c = make(port_);
  if (!token_.empty()) c.set_bearer_token_auth(token_.c_str());
  if (method == "GET") return to_reply(c.Get(path.c_str()));
  if (method == "POST") return to_reply(c.Post(path.c_str(), body, "application/octet-stream"));
  if (method == "PUT") return to_reply(c.Put(path.c_str(), body, "application/octet-stream"));
  if (method == "DELETE") return to_reply(c.Delete(path.c_str()));
  if (method == "OPTIONS") return to_reply(c.Options(path.c_str()));
  return {};
}

bool wait_queue_depth(const Client& client, int n) {
  const std::string line = "ddpipe_serve_queue_depth " + std::to_string(n) + "\n";
  for (int i = 0; i < 400; ++i) {
    if (client.get("/metrics").body.find(line) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string raw_exchange(int port, const std::string& bytes, double timeout_s, bool until_close) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (until_close) ::shutdown(fd, SHUT_WR);
    timeval tv{0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto end = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(timeout_s));
    char buf[4096];
    while (std::chrono::steady_clock::now() < end && (until_close || !complete_response(out))) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) break;  // closed by the server
      if (n > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

}  // namespace ddpipe::serve::fixtures
