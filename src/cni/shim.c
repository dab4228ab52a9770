// The executable a runtime runs for each cnilab plugin (dist/cni/bin/<name>,
// one copy per plugin). When a cnilab daemon serves the network namespace we
// run in, the call goes to it over a unix socket: the plugins stay loaded
// there, so no Node start-up per call. Otherwise the plugin runs here with
// node (dist/cni/lib/<name>.mjs), exactly as without a daemon.
//
// When no daemon answers, the shim first starts one for its namespace
// (dist/cni/cnid.mjs, detached, CNILAB_CNID_AUTOSTART=0 turns this off) and
// hands it the call: a runtime that calls the plugins again and again pays
// Node's start-up once, not on every call. Such a daemon exits once idle
// (CNILAB_CNID_IDLE_MS, 30 s by default) or once its namespace's name in
// /run/netns is gone. The daemon says it listens on a pipe (fd 3); if it
// cannot start, the pipe closes and the plugin runs here as before.
// Wire format and socket path: src/cni/daemon.ts.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CNILAB_NODE
#define CNILAB_NODE "/usr/bin/node"
#endif

extern char **environ;

static void json_string(const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
}

// A CNI error object on stdout and a non-zero exit, as the spec wants.
static void fail(int code, const char *msg, const char *detail) {
  printf("{\"cniVersion\":\"1.1.0\",\"code\":%d,\"msg\":\"", code);
  json_string(msg);
  if (detail) {
    printf(": ");
    json_string(detail);
  }
  printf("\"}");
  exit(1);
}

static int send_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static const char *run_dir(void) {
  const char *dir = getenv("CNILAB_RUN_DIR");
  return dir && *dir ? dir : "/run/cnilab-cnid";
}

// The daemon of our network namespace, or -1 when none answers.
static int connect_daemon(void) {
  struct stat ns;
  if (stat("/proc/self/ns/net", &ns) != 0) return -1;
  const char *dir = run_dir();
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int len = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/cni-%lu.sock", dir, (unsigned long)ns.st_ino);
  if (len < 0 || (size_t)len >= sizeof addr.sun_path) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// argv for node: `node <dir of this file>/<rel>` and the extra arguments.
static char **node_args(const char *self, const char *rel, char **extra) {
  char dir[PATH_MAX];
  static char script[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", self);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  if (snprintf(script, sizeof script, "%s/%s", dir, rel) >= (int)sizeof script) return NULL;
  if (access(script, R_OK) != 0) return NULL;
  int n = 0;
  while (extra && extra[n]) n++;
  char **args = calloc((size_t)n + 3, sizeof *args);
  if (!args) return NULL;
  args[0] = "node";
  args[1] = script;
  for (int i = 0; i < n; i++) args[i + 2] = extra[i];
  return args;
}

static void exec_node(char **args) {
  execvp("node", args);
  execv(CNILAB_NODE, args); // PATH from the runtime may lack node
}

// Start this namespace's daemon, detached from us and from the runtime's
// pipes, and wait until it listens. One shim at a time starts one: the run
// directory is locked meanwhile, and whoever waited on the lock finds it up.
static int start_daemon(const char *self) {
  const char *off = getenv("CNILAB_CNID_AUTOSTART");
  if (off && strcmp(off, "0") == 0) return -1;
  const char *dir = run_dir();
  mkdir(dir, 0700);
  int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0) return -1;
  if (flock(lock, LOCK_EX) != 0) {
    close(lock);
    return -1;
  }
  int fd = connect_daemon();
  if (fd >= 0) {
    close(lock);
    return fd;
  }
  char **args = node_args(self, "../cnid.mjs", NULL);
  int ready[2];
  if (!args || pipe2(ready, O_CLOEXEC) != 0) {
    close(lock);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    // A new session, and a second fork so that the daemon is nobody's child here.
    setsid();
    if (fork() != 0) _exit(0);
    int null = open("/dev/null", O_RDWR);
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/cnid-autostart.log", dir);
    int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null < 0 || out < 0) _exit(127);
    dup2(null, 0);
    dup2(out, 1);
    dup2(out, 2);
    dup2(ready[1], 3); // dup2 clears close-on-exec
    for (int i = 4; i < 1024; i++) close(i); // nothing of the runtime's may stay open in the daemon
    setenv("CNILAB_RUN_DIR", dir, 1);
    setenv("CNILAB_CNID_READY_FD", "3", 1);
    if (!getenv("CNILAB_CNID_IDLE_MS")) setenv("CNILAB_CNID_IDLE_MS", "30000", 1);
    exec_node(args);
    _exit(127);
  }
  close(ready[1]);
  if (pid > 0) waitpid(pid, NULL, 0);
  // A line when it listens; end of file when it gave up or died; nothing in 10 s: hung, run the plugin here.
  char c;
  ssize_t r = -1;
  struct pollfd p = {.fd = ready[0], .events = POLLIN};
  int n;
  do n = poll(&p, 1, 10000);
  while (n < 0 && errno == EINTR);
  if (n == 1) {
    do r = read(ready[0], &c, 1);
    while (r < 0 && errno == EINTR);
  }
  close(ready[0]);
  fd = r == 1 ? connect_daemon() : -1;
  close(lock);
  free(args);
  return fd;
}

// No daemon: become `node <dir of this file>/../lib/<name>.mjs`, stdin untouched.
static void run_standalone(const char *self, const char *name, char **argv) {
  char dir[PATH_MAX], script[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", self);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  if (snprintf(script, sizeof script, "%s/../lib/%s.mjs", dir, name) >= (int)sizeof script) fail(5, "plugin path too long", NULL);
  if (access(script, R_OK) != 0) fail(50, "cannot read the plugin bundle (dist/cni/lib must sit beside dist/cni/bin)", script);
  int argc = 0;
  while (argv[argc]) argc++;
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) fail(5, "out of memory", NULL);
  args[0] = "node";
  args[1] = script;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  execvp("node", args);
  execv(CNILAB_NODE, args); // PATH from the runtime may lack node
  fail(50, "cannot start node", strerror(errno));
}

int main(int argc, char **argv) {
  (void)argc;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) fail(5, "cannot read /proc/self/exe", strerror(errno));
  self[n] = '\0';
  const char *name = strrchr(self, '/') ? strrchr(self, '/') + 1 : self;

  int fd = connect_daemon();
  if (fd < 0) fd = start_daemon(self);
  if (fd < 0) run_standalone(self, name, argv);

  // Request: name, the CNI_* variables, an empty entry, then stdin.
  int ok = send_all(fd, name, strlen(name) + 1) == 0;
  for (char **e = environ; ok && *e; e++) {
    if (strncmp(*e, "CNI_", 4) == 0) ok = send_all(fd, *e, strlen(*e) + 1) == 0;
  }
  ok = ok && send_all(fd, "", 1) == 0;
  const char *cmd = getenv("CNI_COMMAND");
  int read_stdin = !(cmd && strcmp(cmd, "VERSION") == 0 && isatty(0));
  char buf[65536];
  while (ok && read_stdin) {
    ssize_t r = read(0, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    ok = send_all(fd, buf, (size_t)r) == 0;
  }
  if (!ok) fail(11, "the cnilab daemon went away during the call; try again", strerror(errno));
  shutdown(fd, SHUT_WR);

  // Response: "<exit code>\n" then the plugin's stdout.
  size_t cap = sizeof buf, len = 0;
  char *reply = malloc(cap);
  if (!reply) fail(5, "out of memory", NULL);
  for (;;) {
    if (len == cap && !(reply = realloc(reply, cap *= 2))) fail(5, "out of memory", NULL);
    ssize_t r = recv(fd, reply + len, cap - len, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(11, "reading the cnilab daemon's answer failed; try again", strerror(errno));
    if (r == 0) break;
    len += (size_t)r;
  }
  char *nl = memchr(reply, '\n', len);
  if (!nl) fail(11, "the cnilab daemon closed the connection without an answer; try again", NULL);
  *nl = '\0';
  int code = atoi(reply);
  size_t off = (size_t)(nl + 1 - reply);
  for (size_t done = off; done < len;) {
    ssize_t w = write(1, reply + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 1;
    done += (size_t)w;
  }
  return code;
}
