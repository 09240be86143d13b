/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tcp-rate: the traffic of bench/dist.sh, one program for both ends so
 * that the direct path, the distributed VIPA and HAProxy are measured with
 * the same client and the same servers.
 *
 *   tcp-rate serve PORT NAME
 *       Listens on the wildcard (IPv4 and IPv6) PORT. Every connection gets
 *       "NAME\n", then everything it sends is read and dropped until it
 *       closes.
 *   tcp-rate rate ADDR PORT SECONDS CONC
 *       For SECONDS, CONC connections at a time: connect, read the
 *       server's name line, close. Prints the connections completed per
 *       second, the connect-to-name latency (p50, p99, in ms), failures
 *       (refused, reset, closed early, no answer within 1 s), and how
 *       many connections each server name answered.
 *   tcp-rate stream ADDR PORT SECONDS CONC
 *       CONC connections, each sending 64 KiB writes for SECONDS after the
 *       name line: prints the total Gbit/s and the names that answered.
 *
 * One thread, epoll; numbers go to stdout as "key value" lines for the
 * script to read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 512
#define MAX_NAMES 16
#define MAX_SAMPLES (4 * 1024 * 1024)
#define ATTEMPT_NS 1000000000LL
#define CHUNK 65536

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: tcp-rate serve PORT NAME\n"
			"       tcp-rate rate|stream ADDR PORT SECONDS CONC\n");
	exit(64);
}

static long num(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > max)
		usage();
	return v;
}

static void die(const char *what)
{
	fprintf(stderr, "tcp-rate: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- serve ---- */

static _Noreturn void serve(int port, const char *name)
{
	struct sockaddr_in6 sa = {
		.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_ANY_INIT};
	char line[256], drain[CHUNK];
	struct epoll_event ev, evs[64];
	int ls, ep, one = 1, zero = 0;
	size_t len;

	len = (size_t)snprintf(line, sizeof(line), "%s\n", name);
	ls = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 4096) < 0)
		die("listen");
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev = (struct epoll_event){.events = EPOLLIN, .data.fd = ls};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0)
		die("epoll");
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == ls) {
				int c;

				while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					ev = (struct epoll_event){.events = EPOLLIN, .data.fd = c};
					/* The name fits the empty send buffer of a new socket. */
					if (write(c, line, len) != (ssize_t)len ||
					    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						close(c);
				}
				continue;
			}
			for (;;) {
				ssize_t r = read(fd, drain, sizeof(drain));

				if (r > 0)
					continue;
				if (r < 0 && errno == EAGAIN)
					break;
				close(fd); /* EOF or reset */
				break;
			}
		}
	}
}

/* ---- clients ---- */

struct conn {
	int fd;
	int64_t t0;
	size_t got;
	bool named;
	char name[64];
};

static struct sockaddr_storage dst;
static socklen_t dst_len;
static char names[MAX_NAMES][64];
static long counts[MAX_NAMES];
static int n_names;
static long failed[4]; /* refused, reset, closed early, no answer */
static const char *fail_names[4] = {"refused", "reset", "closed_early", "timeout"};

static void count_name(const char *name)
{
	for (int i = 0; i < n_names; i++)
		if (!strcmp(names[i], name)) {
			counts[i]++;
			return;
		}
	if (n_names < MAX_NAMES) {
		snprintf(names[n_names], sizeof(names[0]), "%s", name);
		counts[n_names++] = 1;
	}
}

static void resolve(const char *addr, int port)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM}, *res;

	if (getaddrinfo(addr, NULL, &hints, &res) != 0)
		usage();
	memcpy(&dst, res->ai_addr, res->ai_addrlen);
	dst_len = res->ai_addrlen;
	freeaddrinfo(res);
	if (dst.ss_family == AF_INET)
		((struct sockaddr_in *)&dst)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&dst)->sin6_port = htons((uint16_t)port);
}

static int start(int ep, struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	int one = 1;

	*c = (struct conn){.fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
	if (c->fd < 0)
		die("socket");
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->t0 = now_ns();
	if (connect(c->fd, (struct sockaddr *)&dst, dst_len) < 0 && errno != EINPROGRESS)
		die("connect");
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
	return 0;
}

static void finish(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
}

/* Reads what came; 1 once the name line is complete, 0 for more, -1
 * closed or failed (counted). */
static int read_name(struct conn *c)
{
	for (;;) {
		ssize_t r = read(c->fd, c->name + c->got, sizeof(c->name) - 1 - c->got);
		char *nl;

		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r < 0) {
			failed[errno == ECONNREFUSED ? 0 : 1]++;
			return -1;
		}
		if (r == 0) {
			failed[2]++;
			return -1;
		}
		c->got += (size_t)r;
		c->name[c->got] = 0;
		nl = strchr(c->name, '\n');
		if (nl) {
			*nl = 0;
			c->named = true;
			count_name(c->name);
			return 1;
		}
		if (c->got == sizeof(c->name) - 1) {
			failed[2]++;
			return -1;
		}
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_names(void)
{
	for (int i = 0; i < n_names; i++)
		printf("served %s %ld\n", names[i], counts[i]);
	for (int i = 0; i < 4; i++)
		printf("failed_%s %ld\n", fail_names[i], failed[i]);
}

static int rate(double seconds, int conc)
{
	static struct conn conns[MAX_CONC];
	struct epoll_event evs[64];
	int64_t *lat = calloc(MAX_SAMPLES, sizeof(*lat));
	int64_t t_start = now_ns(), t_end = t_start + (int64_t)(seconds * 1e9);
	long n = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC), active = 0;

	if (!lat || ep < 0)
		die("set-up");
	for (int i = 0; i < conc; i++, active++)
		start(ep, &conns[i], EPOLLIN);
	while (active > 0) {
		int k = epoll_wait(ep, evs, 64, 50);
		int64_t now = now_ns();

		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			int r = read_name(c);

			if (r == 0)
				continue;
			if (r > 0 && n < MAX_SAMPLES)
				lat[n++] = now - c->t0;
			finish(c);
			if (now < t_end)
				start(ep, c, EPOLLIN);
			else
				active--;
		}
		/* Attempts that got no answer within a second: a dropped SYN is
		 * retried by the kernel only after a second, so this counts as a
		 * failure, not a slow connection. */
		for (int i = 0; i < conc; i++) {
			struct conn *c = &conns[i];

			if (c->fd < 0 || now - c->t0 < ATTEMPT_NS)
				continue;
			failed[3]++;
			finish(c);
			if (now < t_end)
				start(ep, c, EPOLLIN);
			else
				active--;
		}
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
	printf("connections %ld\n", n);
	printf("per_second %.0f\n", n / ((now_ns() - t_start) / 1e9));
	printf("p50_ms %.3f\n", n ? lat[n / 2] / 1e6 : 0.0);
	printf("p99_ms %.3f\n", n ? lat[(n * 99) / 100] / 1e6 : 0.0);
	print_names();
	free(lat);
	return 0;
}

static int stream(double seconds, int conc)
{
	static struct conn conns[MAX_CONC];
	static char buf[CHUNK];
	struct epoll_event evs[64];
	int64_t t_start, t_end;
	long long bytes = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC), named = 0;

	if (ep < 0)
		die("epoll");
	for (int i = 0; i < conc; i++)
		start(ep, &conns[i], EPOLLIN | EPOLLOUT);
	t_start = now_ns();
	t_end = t_start + (int64_t)(seconds * 1e9);
	while (now_ns() < t_end) {
		int k = epoll_wait(ep, evs, 64, 50);

		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			ssize_t w;

			if (c->fd < 0)
				continue;
			if (!c->named) {
				int r = read_name(c);

				if (r < 0) {
					(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					finish(c);
				}
				if (r <= 0)
					continue;
				named++;
			}
			while ((w = write(c->fd, buf, sizeof(buf))) > 0)
				bytes += w;
			if (w < 0 && errno != EAGAIN) {
				failed[1]++;
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				finish(c);
			}
		}
	}
	for (int i = 0; i < conc; i++)
		if (conns[i].fd >= 0)
			finish(&conns[i]);
	printf("connections %d\n", named);
	printf("gbit_per_second %.3f\n", bytes * 8 / ((now_ns() - t_start) / 1e9) / 1e9);
	print_names();
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && !strcmp(argv[1], "serve"))
		serve((int)num(argv[2], 65535), argv[3]);
	if (argc != 6)
		usage();
	resolve(argv[2], (int)num(argv[3], 65535));
	if (!strcmp(argv[1], "rate"))
		return rate((double)num(argv[4], 3600), (int)num(argv[5], MAX_CONC));
	if (!strcmp(argv[1], "stream"))
		return stream((double)num(argv[4], 3600), (int)num(argv[5], MAX_CONC));
	usage();
}
