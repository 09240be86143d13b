/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The extra cost of libdvipa-preload.so on calls that have nothing to do
 * with VIPAs: bind() and connect() on addresses outside every range. Runs
 * every case itself, then re-executes itself with LD_PRELOAD set (and once
 * more with DVIPA_SOURCE set too) and prints, per case, the median over
 * batches of the nanoseconds per call, without and with the shim.
 *
 * Two processes differ by more than the shim costs (CPU frequency, cache
 * and page layout: tens of ns), so the "extra" column is measured inside the
 * preloaded process: batches alternate between the interposed function and
 * libc's own (found with dlopen(RTLD_NOLOAD)), and the median of the
 * per-batch differences is reported. The process is pinned to one CPU.
 *
 *   preload-bench [-n CALLS] [-s SHIM] [-l LOCAL_IPV4] [-S DVIPAD_SOCKET]
 *
 * SHIM defaults to libdvipa-preload.so next to this program, LOCAL_IPV4 to
 * the first non-loopback IPv4 address of the host (that case is skipped
 * when there is none). The one failing case (a non-local address outside
 * every range) measures the shim's error path: by default with no dvipad
 * (DVIPA_SOCKET points nowhere); with -S, a dvipad that answers "no range".
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define MAX_CASES 16

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);

struct fns {
	bind_fn bind;
	connect_fn connect;
	sendto_fn sendto;
};

struct result {
	char name[64];
	double ns;    /* median ns per call through the process's bind() etc. */
	double extra; /* median per-batch difference to libc's own (preloaded runs) */
	bool skipped;
};

static unsigned calls = 200000;
static const char *local4, *dvipad_sock;
static struct fns called; /* what the program calls: the shim's when preloaded */
static struct fns libc_fns;
static bool compare; /* alternate with libc_fns */
static struct result results[MAX_CASES];
static size_t n_results;

static void die(const char *what)
{
	fprintf(stderr, "preload-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static size_t n_batches(void)
{
	size_t n = calls / BATCH;

	return n ? n : 1;
}

/* One measured batch of BATCH calls through f; ns per call. */
typedef double (*batch_fn)(const struct fns *f, void *ctx);

static void measure(const char *name, batch_fn batch, void *ctx)
{
	size_t nb = n_batches();
	double *t = calloc(nb, sizeof(*t)), *d = calloc(nb, sizeof(*d));
	struct result *r = &results[n_results++];

	if (!t || !d)
		die("calloc");
	for (size_t b = 0; b < nb; b++) {
		double base;

		if (!compare) {
			t[b] = batch(&called, ctx);
			continue;
		}
		/* The order alternates so that neither side always runs
		 * first. */
		if (b % 2) {
			base = batch(&libc_fns, ctx);
			t[b] = batch(&called, ctx);
		} else {
			t[b] = batch(&called, ctx);
			base = batch(&libc_fns, ctx);
		}
		d[b] = t[b] - base;
	}
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->ns = median(t, nb);
	r->extra = compare ? median(d, nb) : 0;
	free(t);
	free(d);
}

struct bind_ctx {
	const char *name;
	int family;
	struct sockaddr_storage ss;
	socklen_t len;
	int expect_errno; /* the failure every bind must have, or 0 */
};

/* bind() on fresh sockets; socket() and close() are not measured. */
static double batch_bind(const struct fns *f, void *ctx)
{
	struct bind_ctx *c = ctx;
	int fds[BATCH];
	double t0, t;

	for (int i = 0; i < BATCH; i++) {
		fds[i] = socket(c->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0)
			die("socket");
	}
	t0 = now_ns();
	for (int i = 0; i < BATCH; i++) {
		int r = f->bind(fds[i], (struct sockaddr *)&c->ss, c->len);

		if (c->expect_errno ? r == 0 || errno != c->expect_errno : r < 0) {
			fprintf(stderr, "preload-bench: %s: unexpected result %d (%s)\n", c->name, r, strerror(errno));
			exit(1);
		}
	}
	t = (now_ns() - t0) / BATCH;
	for (int i = 0; i < BATCH; i++)
		close(fds[i]);
	return t;
}

static void case_bind(const char *name, int family, const char *addr, int expect_errno)
{
	struct bind_ctx c = {.name = name, .family = family, .expect_errno = expect_errno};

	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c.ss;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			die("inet_pton");
		c.len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c.ss;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			die("inet_pton");
		c.len = sizeof(*s6);
	}
	measure(name, batch_bind, &c);
}

struct udp_ctx {
	int tx;
	struct sockaddr_in to;
	bool use_sendto;
};

static double batch_udp(const struct fns *f, void *ctx)
{
	struct udp_ctx *c = ctx;
	double t0 = now_ns();

	for (int i = 0; i < BATCH; i++) {
		/* A full receive queue drops silently; the result does not
		 * matter here, only the time of the call. */
		if (c->use_sendto)
			(void)!f->sendto(c->tx, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&c->to, sizeof(c->to));
		else if (f->connect(c->tx, (struct sockaddr *)&c->to, sizeof(c->to)) < 0)
			die("connect");
	}
	return (now_ns() - t0) / BATCH;
}

/* connect() or sendto() of a bound UDP socket towards a receiver on addr:
 * DVIPA_SOURCE leaves a bound socket alone, after a getsockname() when the
 * destination is not loopback (for loopback it does not even look). */
static void case_udp(const char *name, const char *addr, bool use_sendto)
{
	struct udp_ctx c = {.to = {.sin_family = AF_INET}, .use_sendto = use_sendto};
	struct sockaddr_in me;
	socklen_t tl = sizeof(c.to);
	int rx;

	if (inet_pton(AF_INET, addr, &c.to.sin_addr) != 1)
		die("inet_pton");
	me = c.to;
	rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	c.tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rx < 0 || c.tx < 0)
		die("socket");
	if (bind(rx, (struct sockaddr *)&c.to, sizeof(c.to)) < 0 || getsockname(rx, (struct sockaddr *)&c.to, &tl) < 0)
		die("bind receiver");
	if (bind(c.tx, (struct sockaddr *)&me, sizeof(me)) < 0)
		die("bind sender");
	measure(name, batch_udp, &c);
	close(rx);
	close(c.tx);
}

static const char *first_local_ipv4(char *buf, size_t size)
{
	struct ifaddrs *ifa, *i;
	const char *res = NULL;

	if (getifaddrs(&ifa) < 0)
		return NULL;
	for (i = ifa; i && !res; i = i->ifa_next) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)i->ifa_addr;

		if (s4 && s4->sin_family == AF_INET && (ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			res = inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)size);
	}
	freeifaddrs(ifa);
	return res;
}

static void run_cases(void)
{
	char name[64];

	case_bind("bind udp 127.0.0.1:0", AF_INET, "127.0.0.1", 0);
	case_bind("bind udp [::1]:0", AF_INET6, "::1", 0);
	if (local4) {
		snprintf(name, sizeof(name), "bind udp %s:0", local4);
		case_bind(name, AF_INET, local4, 0);
	} else {
		struct result *r = &results[n_results++];

		snprintf(r->name, sizeof(r->name), "bind udp LOCAL:0");
		r->skipped = true;
	}
	case_udp("connect udp 127.0.0.1", "127.0.0.1", false);
	case_udp("sendto udp 127.0.0.1", "127.0.0.1", true);
	if (local4) {
		snprintf(name, sizeof(name), "connect udp %s", local4);
		case_udp(name, local4, false);
		snprintf(name, sizeof(name), "sendto udp %s", local4);
		case_udp(name, local4, true);
	}
	/* Not local and outside every range: the program's own error after
	 * the shim asked. An error path, shown for completeness; fewer
	 * calls, as it is slow. */
	{
		unsigned saved = calls;

		calls = calls / 10 < BATCH ? BATCH : calls / 10;
		case_bind("bind 198.51.100.1:0 (EADDRNOTAVAIL)", AF_INET, "198.51.100.1", EADDRNOTAVAIL);
		calls = saved;
	}
}

/* Which object defines the bind() this process calls. */
static const char *bind_provider(void)
{
	Dl_info di;
	void *f = dlsym(RTLD_DEFAULT, "bind");

	if (!f || !dladdr(f, &di) || !di.dli_fname)
		return "?";
	return di.dli_fname;
}

/* Re-execute with the shim (and DVIPA_SOURCE when source is set); read its
 * results into out[]. */
static void run_child(const char *self, const char *shim, const char *source, struct result *out, size_t n)
{
	char nbuf[32], line[256];
	const char *argv[8];
	int p[2], status, i = 0;
	size_t k = 0;
	pid_t pid;
	FILE *f;

	snprintf(nbuf, sizeof(nbuf), "%u", calls);
	argv[i++] = self;
	argv[i++] = "--child";
	argv[i++] = "-n";
	argv[i++] = nbuf;
	if (local4) {
		argv[i++] = "-l";
		argv[i++] = local4;
	}
	argv[i] = NULL;
	if (pipe(p) < 0)
		die("pipe");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		setenv("LD_PRELOAD", shim, 1);
		setenv("DVIPA_SOCKET", dvipad_sock ? dvipad_sock : "/nonexistent/dvipad.sock", 1);
		unsetenv("DVIPA_DEBUG");
		/* The failing case would say why on every call: the cost of the
		 * error path is the question, not of a line on stderr. */
		setenv("DVIPA_QUIET", "1", 1);
		unsetenv("DVIPA_STANDBY");
		if (source)
			setenv("DVIPA_SOURCE", source, 1);
		else
			unsetenv("DVIPA_SOURCE");
		execv(self, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	if (!f)
		die("fdopen");
	while (fgets(line, sizeof(line), f) && k < n) {
		struct result *r = &out[k++];
		int skipped = 0;

		if (sscanf(line, "%*[^\t]\t%lf\t%lf\t%d", &r->ns, &r->extra, &skipped) != 3)
			break;
		r->skipped = skipped;
	}
	fclose(f);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || k != n) {
		fprintf(stderr, "preload-bench: the run with LD_PRELOAD=%s failed\n", shim);
		exit(1);
	}
}

static void pin_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	CPU_ZERO(&set);
	CPU_SET(cpu < 0 ? 0 : cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

static int child_main(void)
{
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);

	if (!strstr(bind_provider(), "dvipa-preload")) {
		fprintf(stderr, "preload-bench: the shim is not loaded (bind() from %s)\n", bind_provider());
		return 1;
	}
	if (!libc)
		die("dlopen libc.so.6");
	libc_fns.bind = (bind_fn)dlsym(libc, "bind");
	libc_fns.connect = (connect_fn)dlsym(libc, "connect");
	libc_fns.sendto = (sendto_fn)dlsym(libc, "sendto");
	if (!libc_fns.bind || !libc_fns.connect || !libc_fns.sendto)
		die("dlsym in libc.so.6");
	compare = true;
	run_cases();
	for (size_t i = 0; i < n_results; i++)
		printf("%s\t%.2f\t%.2f\t%d\n", results[i].name, results[i].ns, results[i].extra, results[i].skipped);
	return 0;
}

int main(int argc, char **argv)
{
	char self[PATH_MAX], shim_buf[PATH_MAX + 32], lbuf[INET_ADDRSTRLEN];
	struct result with[MAX_CASES], with_src[MAX_CASES];
	const char *shim = NULL;
	bool child = false;
	ssize_t n;
	int opt;

	if (argc > 1 && strcmp(argv[1], "--child") == 0) {
		child = true;
		argv++;
		argc--;
	}
	while ((opt = getopt(argc, argv, "n:s:l:S:")) != -1) {
		switch (opt) {
		case 'n':
			calls = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			shim = optarg;
			break;
		case 'l':
			local4 = optarg;
			break;
		case 'S':
			dvipad_sock = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: preload-bench [-n CALLS] [-s SHIM] [-l LOCAL_IPV4] [-S DVIPAD_SOCKET]\n");
			return 2;
		}
	}
	if (calls < BATCH)
		calls = BATCH;
	called = (struct fns){.bind = bind, .connect = connect, .sendto = sendto};
	pin_cpu();
	if (child)
		return child_main();

	if (strstr(bind_provider(), "dvipa-preload")) {
		fprintf(stderr, "preload-bench: run me without LD_PRELOAD; I add it myself\n");
		return 2;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		die("readlink /proc/self/exe");
	self[n] = 0;
	if (!shim) {
		char *slash = strrchr(self, '/');

		snprintf(shim_buf, sizeof(shim_buf), "%.*s/libdvipa-preload.so", (int)(slash ? slash - self : 1),
			 slash ? self : ".");
		shim = shim_buf;
	}
	if (access(shim, R_OK) < 0)
		die(shim);
	if (!local4)
		local4 = first_local_ipv4(lbuf, sizeof(lbuf));

	run_cases();
	run_child(self, shim, NULL, with, n_results);
	run_child(self, shim, "192.0.2.1", with_src, n_results);

	printf("shim %s, error path with %s\n", shim, dvipad_sock ? dvipad_sock : "no dvipad");
	printf("%u calls per case (a tenth for the error path), median of batches of %d, ns per call;\n", calls, BATCH);
	printf("extra: median per-batch difference to libc's own function in the preloaded process\n\n");
	printf("%-38s %9s %9s %8s %9s %8s\n", "case", "no shim", "shim", "extra", "+SOURCE", "extra");
	for (size_t i = 0; i < n_results; i++) {
		if (results[i].skipped) {
			printf("%-38s %s\n", results[i].name, "skipped (no local IPv4 address; use -l)");
			continue;
		}
		printf("%-38s %9.1f %9.1f %+8.1f %9.1f %+8.1f\n", results[i].name, results[i].ns, with[i].ns,
		       with[i].extra, with_src[i].ns, with_src[i].extra);
	}
	return 0;
}
