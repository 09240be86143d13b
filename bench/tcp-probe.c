/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tcp-probe: time from an event until a TCP server with the expected banner
 * answers on an address, for the failover benchmarks.
 *
 *   tcp-probe [-i INTERVAL_US] [-t ATTEMPT_MS] [-T TOTAL_MS] [-k PID] ADDR PORT BANNER START
 *
 * START is the event time in nanoseconds of CLOCK_REALTIME (`date +%s%N`),
 * "now", or "-": print "ready", then read START from a line on stdin and
 * only then begin (so the prober is already running when the event happens).
 * From START on, a new non-blocking connect is started every INTERVAL_US
 * (default 1000) while earlier ones are still pending; each attempt is
 * abandoned after ATTEMPT_MS (default 100). An attempt succeeds when it
 * connects and the server's first bytes begin with BANNER; connections
 * answered with another banner (the old server) are closed and ignored.
 * Prints the milliseconds from START to the moment the successful attempt's
 * connect completed, and exits 0; prints "timeout" and exits 2 after TOTAL_MS
 * (default 10000).
 *
 * With -k PID the event is the prober's own: once START is read, it sends
 * SIGKILL to PID, and the time just before that replaces START. Run at a
 * real-time priority beside CPU hogs, this times the failover from the
 * signal itself, not from a shell that may wait tens of ms for a CPU
 * between taking the time and sending it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 1024

struct slot {
	int fd;
	int connected;
	int64_t deadline;
	int64_t t_conn;
	size_t len;
	char buf[64];
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: tcp-probe [-i INTERVAL_US] [-t ATTEMPT_MS] [-T TOTAL_MS] [-k PID] "
			"ADDR PORT BANNER START|now|-\n");
	exit(64);
}

static long parse_num(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0)
		usage();
	return v;
}

static int64_t parse_start(const char *s)
{
	char line[64];
	char *end;
	long long v;

	if (!strcmp(s, "now"))
		return now_ns();
	if (!strcmp(s, "-")) {
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			exit(64);
		line[strcspn(line, "\r\n")] = 0;
		s = line;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v <= 0)
		usage();
	return v;
}

static void drop(struct slot *sl)
{
	close(sl->fd);
	sl->fd = -1;
}

int main(int argc, char **argv)
{
	static struct slot slots[MAX_SLOTS];
	struct pollfd pfd[MAX_SLOTS];
	int idx[MAX_SLOTS];
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int64_t interval = 1000000, attempt = 100000000, total = 10000000000;
	int64_t start, next, end;
	const char *banner;
	size_t blen;
	long victim = 0;
	int opt, i;

	while ((opt = getopt(argc, argv, "i:t:T:k:")) != -1) {
		switch (opt) {
		case 'i':
			interval = parse_num(optarg) * 1000;
			break;
		case 't':
			attempt = parse_num(optarg) * 1000000;
			break;
		case 'T':
			total = parse_num(optarg) * 1000000;
			break;
		case 'k':
			victim = parse_num(optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 4)
		usage();
	if (inet_pton(AF_INET, argv[optind], &sin.sin_addr) != 1)
		usage();
	sin.sin_port = htons((uint16_t)parse_num(argv[optind + 1]));
	banner = argv[optind + 2];
	blen = strlen(banner);
	if (blen == 0 || blen >= sizeof(slots[0].buf))
		usage();
	for (i = 0; i < MAX_SLOTS; i++)
		slots[i].fd = -1;

	start = parse_start(argv[optind + 3]);
	if (victim) {
		start = now_ns();
		if (kill((pid_t)victim, SIGKILL) < 0) {
			perror("kill");
			return 1;
		}
	}
	next = now_ns();
	end = start + total;

	for (;;) {
		int64_t t = now_ns(), wake;
		struct timespec ts;
		int n = 0, r;

		if (t >= end) {
			printf("timeout\n");
			return 2;
		}
		if (t >= next) {
			for (i = 0; i < MAX_SLOTS && slots[i].fd >= 0; i++)
				;
			if (i < MAX_SLOTS) {
				struct slot *sl = &slots[i];

				sl->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
				if (sl->fd < 0) {
					perror("socket");
					return 1;
				}
				sl->connected = 0;
				sl->len = 0;
				sl->deadline = t + attempt;
				if (connect(sl->fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
					sl->connected = 1;
					sl->t_conn = now_ns();
				} else if (errno != EINPROGRESS) {
					drop(sl);
				}
			}
			next += interval;
			if (next <= t)
				next = t + interval;
		}

		wake = next < end ? next : end;
		for (i = 0; i < MAX_SLOTS; i++) {
			struct slot *sl = &slots[i];

			if (sl->fd < 0)
				continue;
			if (t >= sl->deadline) {
				drop(sl);
				continue;
			}
			if (sl->deadline < wake)
				wake = sl->deadline;
			pfd[n].fd = sl->fd;
			pfd[n].events = sl->connected ? POLLIN : POLLOUT;
			idx[n++] = i;
		}
		t = now_ns();
		if (wake < t)
			wake = t;
		ts.tv_sec = (wake - t) / 1000000000;
		ts.tv_nsec = (wake - t) % 1000000000;
		r = ppoll(pfd, (nfds_t)n, &ts, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			perror("ppoll");
			return 1;
		}
		if (r == 0)
			continue;
		t = now_ns();
		for (i = 0; i < n; i++) {
			struct slot *sl = &slots[idx[i]];
			ssize_t got;
			int err = 0;
			socklen_t elen = sizeof(err);

			if (!pfd[i].revents)
				continue;
			if (!sl->connected) {
				if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
					drop(sl);
					continue;
				}
				sl->connected = 1;
				sl->t_conn = t;
				continue;
			}
			got = read(sl->fd, sl->buf + sl->len, sizeof(sl->buf) - 1 - sl->len);
			if (got <= 0) {
				if (got < 0 && errno == EAGAIN)
					continue;
				drop(sl);
				continue;
			}
			sl->len += (size_t)got;
			if (sl->len >= blen) {
				if (!memcmp(sl->buf, banner, blen)) {
					printf("%.3f\n", (double)(sl->t_conn - start) / 1e6);
					return 0;
				}
				drop(sl);
			} else if (memcmp(sl->buf, banner, sl->len)) {
				drop(sl);
			}
		}
	}
}
