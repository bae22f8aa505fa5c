/*
 * shoal-nft: applies nftables scripts inside network namespaces for one node agent, without a
 * process per script. The agent starts one and keeps it; for each request it enters the named
 * namespace (setns), runs the script through libnftables as one transaction and goes back to its
 * own namespace before it answers.
 *
 * A libnftables context (its netlink socket) is kept per namespace: closing such a socket takes
 * the kernel 7-25 ms, longer than everything else of a request. A kept socket keeps its namespace
 * alive, so the agent says when a namespace goes ("forget"), and every request also drops the
 * contexts of namespaces whose path is gone or names another namespace now.
 *
 * libnftables is loaded with dlopen, so the helper builds without its headers and, where the
 * library is missing, says so at start (the agent then runs `nft` per script as before).
 *
 * Protocol (stdin/stdout; answers come in request order):
 *   start:    "ready\n"  or  "unavailable <reason>\n" (then it exits 3)
 *   apply:    "a <netns path> <script bytes>\n<script>"
 *   forget:   "f <netns path>\n"            (drops that namespace's context; always answered 0)
 *   answer:   "<0|1> <message bytes>\n<message>"   0: done; 1: refused (message: nft's errors,
 *             or why the namespace could not be entered)
 * It exits at EOF on stdin, and with its parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCRIPT_MAX (16 * 1024 * 1024)
#define PATH_BYTES 4096
#define CACHE_MAX 4096

struct nft_ctx;
static struct nft_ctx *(*ctx_new)(unsigned int flags);
static void (*ctx_free)(struct nft_ctx *ctx);
static int (*buffer_output)(struct nft_ctx *ctx);
static int (*buffer_error)(struct nft_ctx *ctx);
static const char *(*error_buffer)(struct nft_ctx *ctx);
static int (*run_buffer)(struct nft_ctx *ctx, const char *buf);

static int load(void) {
  void *lib = dlopen("libnftables.so.1", RTLD_NOW);
  if (!lib) {
    printf("unavailable %s\n", dlerror());
    return -1;
  }
  ctx_new = (struct nft_ctx * (*)(unsigned int)) dlsym(lib, "nft_ctx_new");
  ctx_free = (void (*)(struct nft_ctx *))dlsym(lib, "nft_ctx_free");
  buffer_output = (int (*)(struct nft_ctx *))dlsym(lib, "nft_ctx_buffer_output");
  buffer_error = (int (*)(struct nft_ctx *))dlsym(lib, "nft_ctx_buffer_error");
  error_buffer = (const char *(*)(struct nft_ctx *))dlsym(lib, "nft_ctx_get_error_buffer");
  run_buffer = (int (*)(struct nft_ctx *, const char *))dlsym(lib, "nft_run_cmd_from_buffer");
  if (!ctx_new || !ctx_free || !buffer_output || !buffer_error || !error_buffer || !run_buffer) {
    printf("unavailable libnftables.so.1 lacks a function this helper uses\n");
    return -1;
  }
  return 0;
}

static void answer(int failed, const char *msg) {
  size_t n = strlen(msg);
  printf("%d %zu\n", failed ? 1 : 0, n);
  fwrite(msg, 1, n, stdout);
  fflush(stdout);
}

static void answerf(const char *fmt, ...) {
  char buf[PATH_BYTES + 256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  answer(1, buf);
}

/* A namespace's context: its path, the namespace's identity (nsfs device and inode) and the context. */
struct entry {
  char *path;
  dev_t dev;
  ino_t ino;
  struct nft_ctx *ctx;
};
static struct entry cache[CACHE_MAX];
static int cached;

static void drop(int i) {
  ctx_free(cache[i].ctx);
  free(cache[i].path);
  cache[i] = cache[--cached];
}

/* Drops the contexts of namespaces whose path is gone or names another namespace now. */
static void sweep(void) {
  struct stat st;
  for (int i = cached - 1; i >= 0; i--)
    if (stat(cache[i].path, &st) != 0 || st.st_dev != cache[i].dev || st.st_ino != cache[i].ino) drop(i);
}

/* Answers first: closing the socket is slow and the namespace is going anyway. */
static void forget(const char *path) {
  answer(0, "");
  for (int i = cached - 1; i >= 0; i--)
    if (strcmp(cache[i].path, path) == 0) drop(i);
  sweep();
}

/* Runs `script` in the namespace at `path`; always returns to `home`. 0, or -1 if it could not. */
static int apply(int home, const char *path, const char *script) {
  sweep();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    answerf("cannot open network namespace %s: %s", path, strerror(errno));
    return 0;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    answerf("cannot read network namespace %s: %s", path, strerror(errno));
    close(fd);
    return 0;
  }
  int i = 0;
  while (i < cached && strcmp(cache[i].path, path) != 0) i++;
  if (i < cached && (cache[i].dev != st.st_dev || cache[i].ino != st.st_ino)) drop(i), i = cached;
  if (setns(fd, CLONE_NEWNET) != 0) {
    answerf("cannot enter network namespace %s: %s", path, strerror(errno));
    close(fd);
    return 0;
  }
  close(fd);
  struct nft_ctx *ctx = i < cached ? cache[i].ctx : NULL;
  int keep = 0;
  if (!ctx) {
    ctx = ctx_new(0); /* its netlink socket opens in the namespace entered */
    if (ctx) {
      buffer_output(ctx);
      buffer_error(ctx);
      char *copy = strdup(path);
      if (copy && cached < CACHE_MAX) {
        cache[cached++] = (struct entry){copy, st.st_dev, st.st_ino, ctx};
        keep = 1;
      } else {
        free(copy);
      }
    }
  } else {
    keep = 1;
  }
  if (!ctx) {
    answerf("libnftables: no context in %s", path);
  } else {
    int rc = run_buffer(ctx, script);
    const char *err = error_buffer(ctx);
    if (rc == 0)
      answer(0, "");
    else
      answer(1, err && *err ? err : "nft: the script was refused");
    if (!keep) ctx_free(ctx);
  }
  /* Back home: only the kept sockets (dropped on forget) hold a namespace. */
  return setns(home, CLONE_NEWNET) == 0 ? 0 : -1;
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) {
    printf("unavailable cannot open /proc/self/ns/net: %s\n", strerror(errno));
    return 3;
  }
  if (load() != 0) return 3;
  printf("ready\n");
  fflush(stdout);
  char path[PATH_BYTES];
  char op;
  size_t len;
  for (;;) {
    int n = scanf(" %c %4095s", &op, path);
    if (n == EOF) return 0;
    if (n == 2 && op == 'f' && getchar() == '\n') {
      forget(path);
      continue;
    }
    if (n != 2 || op != 'a' || scanf("%zu", &len) != 1 || getchar() != '\n' || len > SCRIPT_MAX) {
      fprintf(stderr, "shoal-nft: malformed request\n");
      return 2;
    }
    char *script = malloc(len + 1);
    if (!script) return 2;
    if (fread(script, 1, len, stdin) != len) {
      free(script);
      return 2;
    }
    script[len] = '\0';
    int r = apply(home, path, script);
    free(script);
    if (r != 0) {
      fprintf(stderr, "shoal-nft: cannot return to its own network namespace: %s\n", strerror(errno));
      return 4;
    }
  }
}
