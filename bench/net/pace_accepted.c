// LD_PRELOAD shim for scripts/bench_network.sh: every connection the host
// process accepts is paced by the kernel at MNEME_PACE_BYTES bytes/s
// (SO_MAX_PACING_RATE, TCP's own pacing), a per-connection cap like one S3
// connection's, scaled down. Pacing in the kernel costs no copies, so the cap
// holds at 16 connections where a proxy in Python ran out of CPU first.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>

static int paced(int fd) {
  const char *rate = getenv("MNEME_PACE_BYTES");
  if (fd >= 0 && rate != NULL) {
    unsigned value = (unsigned)strtoul(rate, NULL, 10);
    (void)setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &value, sizeof value);
  }
  return fd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  int (*next)(int, struct sockaddr *, socklen_t *) =
      (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
  return paced(next(fd, addr, len));
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  int (*next)(int, struct sockaddr *, socklen_t *, int) =
      (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  return paced(next(fd, addr, len, flags));
}
