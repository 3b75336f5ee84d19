#include "serve/server.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "registry/registry.h"
#include "serve/api.h"
#include "serve/batcher.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "ui/api.h"

namespace ddpipe::serve {

Server::Server(const core::Config& config) : settings_(config.serve) {
  const std::string model = settings_.model.empty() ? config.name : settings_.model;
  registry::validate_name("serve.model", model);
  registry::validate_name("serve.version", settings_.version);
  ApiOptions api;
  api.max_pixels = settings_.max_pixels;
  api.max_inputs = settings_.max_queue;
  api.access_log = settings_.access_log;
  if (!settings_.auth_token_env.empty()) {
    const char* token = std::getenv(settings_.auth_token_env.c_str());
    if (!token || !*token) {
      core::fail_usage("serve.auth_token_env: the environment variable " +
                       settings_.auth_token_env + " is not set or empty");
    }
    api.auth_token = token;
  }
  // libtorch's own default can be 1 (it counts physical cores through cpuinfo).
  const int64_t cores = std::max<unsigned>(1, std::thread::hardware_concurrency());
  at::set_num_threads(
      static_cast<int>(settings_.inference_threads > 0 ? settings_.inference_threads : cores));
  store_ = storage::open_store(config.store, config.s3);
  metrics_ = std::make_unique<Metrics>();
  host_ = std::make_unique<ModelHost>(*store_, model, settings_.version);
  batcher_ = std::make_unique<Batcher>(
      BatcherOptions{settings_.max_batch, settings_.max_delay_ms, settings_.max_queue},
      [m = metrics_.get()](int64_t size) { m->observe_batch(size); });
  dashboard_ =
      std::make_unique<ui::Api>(*store_, ui::ApiOptions{config.telemetry.runs_lost_after_s});
  api_ = std::make_unique<Api>(api, *host_, *batcher_, *metrics_, dashboard_.get());
  HttpServerOptions http;
  http.host = settings_.host;
  http.port = static_cast<int>(settings_.port);
  http.threads = settings_.threads;
  http.max_body_bytes = static_cast<size_t>(settings_.max_body_mb * (1 << 20));
  http.read_timeout_s = settings_.read_timeout_s;
  http.write_timeout_s = settings_.write_timeout_s;
  http_ = std::make_unique<HttpServer>(http, *api_);
}

Server::~Server() { shutdown(); }

int Server::start() {
  host_->watch(settings_.poll_s);
  const int port = http_->start();
  started_ = true;
  core::log::info("serve", "listening",
                  {{"url", "http://" + settings_.host + ":" + std::to_string(port)},
                   {"port", port},
                   {"model", host_->name()},
                   {"version", settings_.version},
                   {"max_batch", settings_.max_batch},
                   {"max_delay_ms", settings_.max_delay_ms},
                   {"threads", settings_.threads},
                   {"inference_threads", at::get_num_threads()},
                   {"auth", !settings_.auth_token_env.empty()}});
  return port;
}

void Server::shutdown() {
  if (!http_) return;
  api_->set_draining();
  batcher_->hurry();  // requests in flight need not wait for company any more
  http_->shutdown();
  batcher_->stop();
  host_->stop();
  if (started_) core::log::info("serve", "stopped");
  started_ = false;
}

int serve_until_signal(const core::Config& config,
                       const std::function<void(int port)>& on_started) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Server server(config);
  const int port = server.start();
  if (on_started) on_started(port);
  int signal = 0;
  sigwait(&signals, &signal);
  core::log::info("serve", "draining: no new connections, finishing requests in flight",
                  {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
  server.shutdown();
  return 0;
}

}  // namespace ddpipe::serve
