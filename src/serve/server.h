// ddpipe::serve — the inference service (`ddpipe serve`), start here.
//
// A Server loads the configured model version or alias from the store (ModelHost), watches the
// alias and swaps in new versions without failing requests, groups concurrent requests into
// batches (Batcher) and answers HTTP (HttpServer → Api), with the dashboard under /ui/
// (ui::Api, docs/ui.md). docs/serving.md has the endpoints, limits and metrics.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/config.h"
#include "serve/model_host.h"

namespace ddpipe::ui {
class Api;
}

namespace ddpipe::serve {

class Api;
class Batcher;
class HttpServer;
class Metrics;

class Server {
 public:
  // Checks the settings (serve.model, the token variable serve.auth_token_env names) and opens
  // the store; loads nothing yet. Throws core::Error(kUsage).
  explicit Server(const core::Config& config);
  ~Server();  // shutdown()

  // Starts the model watch (the first load runs in the background: readiness is false until
  // it succeeds) and the HTTP listener. Returns the bound port. Throws core::Error(kUsage)
  // when the address cannot be bound.
  int start();
  // Drains: readiness turns 503, no new connections, requests in flight are answered; then the
  // batcher and the watch stop. Idempotent.
  void shutdown();

  ModelHost& models() { return *host_; }

 private:
  core::ServeConfig settings_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<ModelHost> host_;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<ui::Api> dashboard_;  // /ui/ (docs/ui.md)
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> http_;
  bool started_ = false;
};

// `ddpipe serve` and `ddpipe ui`: serves until SIGTERM or SIGINT, then drains and returns 0.
// `on_started`, when given, is called with the bound port once the server listens. Call it
// before starting other threads: it blocks those signals in the calling thread, and every
// thread started afterwards inherits that.
int serve_until_signal(const core::Config& config,
                       const std::function<void(int port)>& on_started = nullptr);

}  // namespace ddpipe::serve
