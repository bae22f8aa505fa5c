/*
 * shoal-shim: the per-container monitor of Shoal's engine.
 *
 * One shim runs per container, from `runc create`/`runc run -d` until the container's init
 * exits. It detaches from the engine (fork, setsid, fork), becomes a child subreaper so that
 * the container init is reparented to it when runc exits, owns the pipes that are the
 * container's stdout and stderr, writes every line with a timestamp into a size-rotated log
 * file, and records the exit status atomically into <dir>/exit.json. It never talks to the
 * engine after start-up, so the engine may stop, restart or upgrade while containers run.
 *
 * Start-up report: one line on the sync fd (default 3), then the fd is closed:
 *   "ok <pid> <shim>\n"     runc succeeded, <pid> is the container init (host pid), <shim>
 *                          the pid of this monitor
 *   "err <status>\n<text>"  runc failed with <status>; <text> is what runc wrote on stderr
 *
 * Log record format (CRI-like, one record per line):
 *   <RFC3339Nano UTC> <stdout|stderr> <F|P> <bytes>\n
 * F ends a line of the container's output; P is a partial chunk (the line continues in the
 * next record of the same stream, or the stream ended without a newline).
 *
 * Usage:
 *   shoal-shim -i ID -r RUNC -R RUNC_ROOT -b BUNDLE -d DIR [-m run|create]
 *              [-l LOGFILE] [-s MAX_BYTES] [-n MAX_FILES] [-S SYNC_FD] [-W] [-D]
 *   -W  wait for a 'g' byte on the sync fd before running runc (see below)
 *   -D  daemonise (fork, setsid, fork) instead of relying on the caller to detach it
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16 * 1024)
#define HOLD_MAX 4096

struct stream {
  const char *name;
  int is_err;
  int fd;
  char buf[LINE_MAX_BYTES];
  size_t len;
};

static const char *opt_id, *opt_runc, *opt_root, *opt_bundle, *opt_dir, *opt_mode = "run";
static char log_path[PATH_MAX];
static long long max_bytes = 10LL * 1024 * 1024;
static int max_files = 3;
static int sync_fd = 3;

static int log_fd = -1;
static long long log_size;
/* stderr of runc itself is kept until runc exits, to report failures */
static char hold[HOLD_MAX];
static size_t hold_len;
static int runc_running = 1;

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void open_log(void) {
  log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  struct stat st;
  log_size = (log_fd >= 0 && fstat(log_fd, &st) == 0) ? (long long)st.st_size : 0;
}

/* container.log -> .1 -> .2 ... ; the oldest beyond max_files-1 is dropped. */
static void rotate(void) {
  char from[PATH_MAX + 16], to[PATH_MAX + 16];
  if (log_fd >= 0) close(log_fd);
  if (max_files <= 1) {
    if (truncate(log_path, 0) != 0) { /* reopened below anyway */ }
  } else {
    for (int i = max_files - 1; i >= 1; i--) {
      if (i == 1)
        snprintf(from, sizeof from, "%s", log_path);
      else
        snprintf(from, sizeof from, "%s.%d", log_path, i - 1);
      snprintf(to, sizeof to, "%s.%d", log_path, i);
      rename(from, to);
    }
  }
  open_log();
}

static void emit(struct stream *s, const char *data, size_t n, char tag) {
  struct timespec ts;
  struct tm tm;
  char head[96];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int h = snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s %c ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, s->name, tag);
  size_t total = (size_t)h + n + 1;
  if (log_size > 0 && log_size + (long long)total > max_bytes) rotate();
  if (log_fd < 0) return;
  static char rec[sizeof head + LINE_MAX_BYTES + 1];
  memcpy(rec, head, (size_t)h);
  memcpy(rec + h, data, n);
  rec[h + n] = '\n';
  write_all(log_fd, rec, total);
  log_size += (long long)total;
}

static void feed(struct stream *s, const char *data, size_t n) {
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    size_t take = nl ? (size_t)(nl - data) : n;
    size_t room = LINE_MAX_BYTES - s->len;
    if (take > room) {
      memcpy(s->buf + s->len, data, room);
      s->len += room;
      emit(s, s->buf, s->len, 'P');
      s->len = 0;
      data += room;
      n -= room;
      continue;
    }
    memcpy(s->buf + s->len, data, take);
    s->len += take;
    data += take;
    n -= take;
    if (nl) {
      emit(s, s->buf, s->len, 'F');
      s->len = 0;
      data++;
      n--;
    }
  }
}

static void flush_stream(struct stream *s) {
  if (s->len > 0) emit(s, s->buf, s->len, 'P');
  s->len = 0;
}

/* Reads what is available; returns 0 at EOF (fd closed), 1 otherwise. */
static int drain(struct stream *s) {
  char tmp[65536];
  for (;;) {
    ssize_t r = read(s->fd, tmp, sizeof tmp);
    if (r > 0) {
      if (runc_running && s->is_err && hold_len < HOLD_MAX) {
        size_t k = (size_t)r < HOLD_MAX - hold_len ? (size_t)r : HOLD_MAX - hold_len;
        memcpy(hold + hold_len, tmp, k);
        hold_len += k;
      }
      feed(s, tmp, (size_t)r);
      continue;
    }
    if (r == 0) {
      flush_stream(s);
      close(s->fd);
      s->fd = -1;
      return 0;
    }
    if (errno == EINTR) continue;
    return 1; /* EAGAIN */
  }
}

static void report(const char *msg, size_t n) {
  if (sync_fd < 0) return;
  write_all(sync_fd, msg, n);
  close(sync_fd);
  sync_fd = -1;
}

static void write_exit(int status) {
  char tmp[PATH_MAX + 32], dst[PATH_MAX + 32], body[256], when[64];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
  int code = 255, sig = 0;
  if (WIFEXITED(status)) code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) {
    sig = WTERMSIG(status);
    code = 128 + sig;
  }
  int n = snprintf(body, sizeof body, "{\"exitCode\":%d,\"signal\":%d,\"exitedAt\":\"%s\"}\n", code, sig, when);
  snprintf(tmp, sizeof tmp, "%s/exit.json.tmp", opt_dir);
  snprintf(dst, sizeof dst, "%s/exit.json", opt_dir);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  write_all(fd, body, (size_t)n);
  fsync(fd);
  close(fd);
  rename(tmp, dst);
}

static long read_pid_file(void) {
  char path[PATH_MAX + 16], buf[32];
  snprintf(path, sizeof path, "%s/pid", opt_dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0) return -1;
  buf[r] = 0;
  return strtol(buf, NULL, 10);
}

static void usage(void) {
  static const char msg[] = "err 2\nshoal-shim: usage: -i ID -r RUNC -R ROOT -b BUNDLE -d DIR [-m run|create]\n";
  report(msg, sizeof msg - 1);
  _exit(2);
}

int main(int argc, char **argv) {
  int c;
  int daemonise = 0, wait_go = 0;
  while ((c = getopt(argc, argv, "i:r:R:b:d:m:l:s:n:S:DW")) != -1) {
    switch (c) {
    case 'i': opt_id = optarg; break;
    case 'r': opt_runc = optarg; break;
    case 'R': opt_root = optarg; break;
    case 'b': opt_bundle = optarg; break;
    case 'd': opt_dir = optarg; break;
    case 'm': opt_mode = optarg; break;
    case 'l': snprintf(log_path, sizeof log_path, "%s", optarg); break;
    case 's': max_bytes = atoll(optarg); break;
    case 'n': max_files = atoi(optarg); break;
    case 'S': sync_fd = atoi(optarg); break;
    case 'D': daemonise = 1; break;
    case 'W': wait_go = 1; break;
    default: usage();
    }
  }
  if (!opt_id || !opt_runc || !opt_root || !opt_bundle || !opt_dir) usage();
  if (strcmp(opt_mode, "run") != 0 && strcmp(opt_mode, "create") != 0) usage();
  if (max_bytes < 4096) max_bytes = 4096;
  if (max_files < 1) max_files = 1;
  if (!log_path[0]) snprintf(log_path, sizeof log_path, "%s/container.log", opt_dir);
  fcntl(sync_fd, F_SETFD, FD_CLOEXEC);

  /*
   * Detach. The engine starts the shim in a new session (setsid) and does not wait for it, so
   * no fork is needed on the start path: the shim stays the engine's child while the engine
   * lives (the engine reaps it) and is reparented to init when the engine exits. With -D the
   * shim daemonises itself (fork, setsid, fork) for callers that do not.
   */
  if (daemonise) {
    pid_t p = fork();
    if (p < 0) usage();
    if (p > 0) _exit(0);
    setsid();
    p = fork();
    if (p < 0) _exit(1);
    if (p > 0) _exit(0);
  } else if (getsid(0) != getpid()) {
    setsid();
  }

  umask(022);
  if (chdir("/") != 0) { /* keep going: every path is absolute */ }
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, &old);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    static const char m[] = "err 1\nshoal-shim: pipe failed\n";
    report(m, sizeof m - 1);
    _exit(1);
  }
  open_log();

  /*
   * With -W the engine starts the shim before the bundle is ready (so that process start-up
   * overlaps with mounting the rootfs) and writes one byte 'g' on the sync fd when it is. EOF or
   * anything else means "give up": exit without running runc.
   */
  if (wait_go) {
    char go = 0;
    ssize_t r;
    do r = read(sync_fd, &go, 1);
    while (r < 0 && errno == EINTR);
    if (r != 1 || go != 'g') _exit(0);
  }

  char pidfile[PATH_MAX + 16];
  snprintf(pidfile, sizeof pidfile, "%s/pid", opt_dir);
  pid_t runc = fork();
  if (runc == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    dup2(out[1], 1);
    dup2(err[1], 2);
    const char *args[16];
    int a = 0;
    args[a++] = "runc";
    args[a++] = "--root";
    args[a++] = opt_root;
    args[a++] = opt_mode;
    if (strcmp(opt_mode, "run") == 0) args[a++] = "-d";
    args[a++] = "--bundle";
    args[a++] = opt_bundle;
    args[a++] = "--pid-file";
    args[a++] = pidfile;
    args[a++] = opt_id;
    args[a] = NULL;
    execv(opt_runc, (char *const *)args);
    dprintf(2, "shoal-shim: exec %s: %s\n", opt_runc, strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  if (runc < 0) {
    static const char m[] = "err 1\nshoal-shim: fork failed\n";
    report(m, sizeof m - 1);
    _exit(1);
  }

  static struct stream so = {.name = "stdout"}, se = {.name = "stderr", .is_err = 1};
  so.fd = out[0];
  se.fd = err[0];
  fcntl(so.fd, F_SETFL, O_NONBLOCK);
  fcntl(se.fd, F_SETFL, O_NONBLOCK);

  pid_t init = -1;
  int init_status = 0, init_done = 0;
  /* children reaped before we knew the init's pid */
  pid_t early_pid[16];
  int early_status[16], early_n = 0;
  struct timespec exited_at = {0, 0};

  for (;;) {
    struct pollfd fds[3];
    int nf = 0;
    int io = 0, ie = 0, is = -1;
    if (so.fd >= 0) { io = nf; fds[nf++] = (struct pollfd){.fd = so.fd, .events = POLLIN}; } else io = -1;
    if (se.fd >= 0) { ie = nf; fds[nf++] = (struct pollfd){.fd = se.fd, .events = POLLIN}; } else ie = -1;
    if (sfd >= 0) { is = nf; fds[nf++] = (struct pollfd){.fd = sfd, .events = POLLIN}; }
    int timeout = -1;
    if (init_done || (!runc_running && init < 0)) {
      /* Container gone: finish reading the pipes, but never wait forever for stray writers. */
      if (so.fd < 0 && se.fd < 0) break;
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long ms = (now.tv_sec - exited_at.tv_sec) * 1000 + (now.tv_nsec - exited_at.tv_nsec) / 1000000;
      if (ms >= 2000) break;
      timeout = (int)(2000 - ms);
    }
    int r = poll(fds, (nfds_t)nf, timeout);
    if (r < 0 && errno != EINTR) break;
    if (io >= 0 && (fds[io].revents & (POLLIN | POLLHUP | POLLERR))) drain(&so);
    if (ie >= 0 && (fds[ie].revents & (POLLIN | POLLHUP | POLLERR))) drain(&se);
    if (is >= 0 && (fds[is].revents & POLLIN)) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
      }
      for (;;) {
        int st;
        pid_t w = waitpid(-1, &st, WNOHANG);
        if (w <= 0) break;
        if (w == runc) {
          runc_running = 0;
          /* runc's stderr may still sit in the pipe: read it before judging */
          if (se.fd >= 0) drain(&se);
          int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
          if (ok) init = (pid_t)read_pid_file();
          if (ok && init > 0) {
            char msg[64];
            int n = snprintf(msg, sizeof msg, "ok %d %d\n", (int)init, (int)getpid());
            report(msg, (size_t)n);
            for (int i = 0; i < early_n; i++)
              if (early_pid[i] == init) {
                init_status = early_status[i];
                init_done = 1;
                clock_gettime(CLOCK_MONOTONIC, &exited_at);
              }
          } else {
            char msg[HOLD_MAX + 64];
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            int n = snprintf(msg, sizeof msg, "err %d\n", code);
            memcpy(msg + n, hold, hold_len);
            report(msg, (size_t)n + hold_len);
            init = -1;
            clock_gettime(CLOCK_MONOTONIC, &exited_at);
          }
        } else if (init > 0 && w == init) {
          init_status = st;
          init_done = 1;
          clock_gettime(CLOCK_MONOTONIC, &exited_at);
        } else if (init < 0 && early_n < 16) {
          early_pid[early_n] = w;
          early_status[early_n++] = st;
        }
      }
    }
  }
  if (so.fd >= 0) drain(&so), flush_stream(&so);
  if (se.fd >= 0) drain(&se), flush_stream(&se);
  if (init_done) write_exit(init_status);
  return 0;
}
