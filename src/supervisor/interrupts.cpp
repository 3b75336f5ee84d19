// Interrupts: SIGINT and SIGTERM recorded and written to a self-pipe by an async-signal-safe
// handler; the pipe wakes a Group's poll() or an Interrupts::sleep().
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "core/error.h"
#include "supervisor/supervisor.h"

namespace ddpipe::supervisor {
namespace {

volatile sig_atomic_t g_received = 0;
int g_write_fd = -1;  // the handler's end of the live Interrupts' pipe, -1 when none lives
struct sigaction g_old_int {
}, g_old_term{};

void on_signal(int sig) {
  const int saved = errno;
  if (g_received == 0) g_received = sig;
  const char byte = static_cast<char>(sig);
  (void)!::write(g_write_fd, &byte, 1);  // non-blocking: a full pipe already wakes the reader
  errno = saved;
}

}  // namespace

Interrupts::Interrupts() {
  if (g_write_fd != -1) {
    throw core::Error(core::ErrorKind::kInternal, "supervisor: only one Interrupts at a time");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) core::fail_system("supervisor: pipe");
  read_fd_ = fds[0];
  g_write_fd = fds[1];
  g_received = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // other blocking calls go on; poll() still returns EINTR
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
}

Interrupts::~Interrupts() {
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
  ::close(g_write_fd);
  ::close(read_fd_);
  g_write_fd = -1;
  g_received = 0;
}

int Interrupts::received() const noexcept { return g_received; }

bool Interrupts::sleep(double seconds) const {
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  while (received() == 0) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(end - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{read_fd_, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left));  // EINTR or readable: received() says which
  }
  return received() == 0;
}

std::vector<int> Interrupts::take() {
  std::vector<int> out;
  char bytes[64];
  ssize_t n = 0;
  while ((n = ::read(read_fd_, bytes, sizeof bytes)) > 0) {
    for (ssize_t i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(bytes[i]));
  }
  return out;
}

}  // namespace ddpipe::supervisor
