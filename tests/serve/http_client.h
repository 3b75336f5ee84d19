// A small HTTP client for the serve tests (cpp-httplib's client) and a raw-socket one for
// requests no well-behaved client sends.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace ddpipe::serve::fixtures {

struct Reply {
  int status = 0;  // 0: no response (connection failed)
  std::string body;
  std::multimap<std::string, std::string> headers;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string header(const std::string& name) const;
};

class Client {
 public:
  explicit Client(int port, std::string token = "") : port_(port), token_(std::move(token)) {}
  Reply get(const std::string& path) const;
  Reply post(const std::string& path, const std::string& body,
             const std::string& content_type) const;
  // One file as multipart/form-data field `field`, encoded by the client library (like curl -F).
  Reply post_file(const std::string& path, const std::string& field, const std::string& filename,
                  const std::string& bytes) const;
  Reply send(const std::string& method, const std::string& path,
             const std::string& body = "") const;

 private:
  int port_;
  std::string token_;
};

// Polls /metrics until `n` inputs wait in the batcher (at most 20 s); false if they never do.
bool wait_queue_depth(const Client& client, int n);

// Sends `bytes` over a fresh connection and returns what comes back: one complete response, or
// what arrived before the server closed the connection or `timeout_s` passed. With
// `until_close`, the client half-closes after sending and reads everything until the server
// closes.
std::string raw_exchange(int port, const std::string& bytes, double timeout_s,
                         bool until_close = false);

}  // namespace ddpipe::serve::fixtures
