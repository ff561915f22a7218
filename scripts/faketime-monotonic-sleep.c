/* Preloaded before libfaketime when the test suite runs under `faketime` (see scripts/run-tests.sh).
 *
 * libfaketime 0.9.10 (Debian bookworm) either fakes CLOCK_MONOTONIC, and then every timed wait of a Python
 * thread (threading.Event.wait, queue.Queue.get with a timeout) blocks forever because the kernel compares
 * the faked deadline with the real monotonic clock; or, with FAKETIME_DONT_FAKE_MONOTONIC=1, it still
 * shifts absolute CLOCK_MONOTONIC deadlines of clock_nanosleep() by the fake offset, so Python's
 * time.sleep() fails with EINVAL. With monotonic time left real, this wrapper hands monotonic sleeps to the
 * kernel unchanged and every other clock to libfaketime. The wall clock (CLOCK_REALTIME) stays faked. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *req, struct timespec *rem) {
  if (clock_id == CLOCK_MONOTONIC) {
    /* clock_nanosleep() returns the error number; the raw system call sets errno and returns -1. */
    return syscall(SYS_clock_nanosleep, clock_id, flags, req, rem) == 0 ? 0 : errno;
  }
  static int (*next)(clockid_t, int, const struct timespec *, struct timespec *);
  if (next == NULL) {
    next = (int (*)(clockid_t, int, const struct timespec *, struct timespec *))dlsym(RTLD_NEXT, "clock_nanosleep");
  }
  return next(clock_id, flags, req, rem);
}
