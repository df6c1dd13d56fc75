#include "io/mapping_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#include "mneme/error.hpp"

namespace mneme::detail {
namespace {

// The guarded mappings: lock-free, so the handler can read them at any time.
// A slot is taken by a compare-and-swap of `start` from 0 to kTaken; its size
// and mark are set before `start` becomes the mapping's address.
struct Guarded {
  std::atomic<std::uintptr_t> start{0};
  std::atomic<std::size_t> size{0};
  std::atomic<bool> lost{false};
};
constexpr int kSlots = 4096;
constexpr std::uintptr_t kTaken = 1;
Guarded g_slots[kSlots];

struct sigaction g_previous {};
std::mutex g_install;
std::atomic<std::uintptr_t> g_page{4096};

void forward(int sig, siginfo_t* info, void* context) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction != nullptr) {
      g_previous.sa_sigaction(sig, info, context);
      return;
    }
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // Nobody else wanted it: die of it as the process would have. Returning
  // re-runs the faulting access, which now meets the default action.
  ::signal(sig, SIG_DFL);
  if (info == nullptr || info->si_code <= 0) {
    ::raise(sig);  // sent, not caused by an access
  }
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const auto address = reinterpret_cast<std::uintptr_t>(info != nullptr ? info->si_addr : nullptr);
  if (info != nullptr && info->si_code > 0) {  // caused by an access (SI_USER and raise() are <= 0)
    for (Guarded& g : g_slots) {
      const std::uintptr_t start = g.start.load(std::memory_order_acquire);
      if (start > kTaken && address >= start &&
          address - start < g.size.load(std::memory_order_acquire)) {
        const std::uintptr_t page = address & ~(g_page.load() - 1);
        // Only system calls here (async-signal-safe in practice on Linux).
        void* zero = ::mmap(reinterpret_cast<void*>(page), g_page.load(), PROT_READ,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (zero != MAP_FAILED) {
          g.lost.store(true, std::memory_order_release);
          errno = saved_errno;
          return;  // the access is retried and reads zeros
        }
        break;
      }
    }
  }
  errno = saved_errno;
  forward(sig, info, context);
}

// Puts the handler on top, remembering the one below (once, unless someone
// installed another over it since: a Python runtime's faulthandler, say).
void install() {
  std::lock_guard lock(g_install);
  struct sigaction now {};
  ::sigaction(SIGBUS, nullptr, &now);
  if ((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_sigbus) {
    return;
  }
  g_page.store(static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE)));
  struct sigaction ours {};
  ours.sa_sigaction = on_sigbus;
  ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&ours.sa_mask);
  ::sigaction(SIGBUS, &ours, &g_previous);
}

}  // namespace

MappingGuard::MappingGuard(const void* base, std::size_t size) {
  install();
  const auto start = reinterpret_cast<std::uintptr_t>(base);
  for (int i = 0; i < kSlots; ++i) {
    std::uintptr_t expected = 0;
    Guarded& g = g_slots[i];
    if (g.start.compare_exchange_strong(expected, kTaken, std::memory_order_acq_rel)) {
      g.size.store(size, std::memory_order_relaxed);
      g.lost.store(false, std::memory_order_relaxed);
      g.start.store(start, std::memory_order_release);
      slot_ = i;
      return;
    }
  }
  fail(ErrorKind::limit,
       "more than " + std::to_string(kSlots) + " files mapped at once; read them with --io pread");
}

MappingGuard::~MappingGuard() {
  if (slot_ >= 0) {
    g_slots[slot_].start.store(0, std::memory_order_release);
  }
}

bool MappingGuard::lost() const {
  return slot_ >= 0 && g_slots[slot_].lost.load(std::memory_order_acquire);
}

}  // namespace mneme::detail
