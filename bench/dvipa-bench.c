/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Benchmark client for dvipad, speaking the control protocol directly so
 * that it can pipeline requests. Run by bench/run.sh inside the namespace
 * of a dvipad; prints one line "name p50 p99 ..." per measurement.
 *
 *   dvipa-bench SOCK activate N ADDR      request -> address usable (bind succeeds), N times
 *   dvipa-bench SOCK fresh N BASE         same, each time a new address (with the duplicate probe)
 *   dvipa-bench SOCK takeover N ADDR      kill -9 of the holder -> standby granted and usable
 *   dvipa-bench SOCK many N BASE          N addresses from one client, pipelined; total time
 *   dvipa-bench SOCK granted N BASE       N addresses from one client, all requests sent at
 *                                         once; each must be usable the moment its OK
 *                                         reply is read (exit 1 if not); then the client
 *                                         closes, and the time until none is usable
 *                                         (tests/system/test_routed.py)
 *   dvipa-bench SOCK scale PID SECONDS BASE COUNT...
 *                                         for each COUNT: that many addresses from BASE
 *                                         (IPv4 or IPv6) activated, then released; time
 *                                         per activation; with the largest held, daemon
 *                                         PID's RSS and CPU over SECONDS (bench/scale.sh)
 *   dvipa-bench SOCK rps SECONDS ADDR     synchronous status requests per second
 *   dvipa-bench SOCK flood CONNS SECONDS  CONNS connections, each with 50 whole-status
 *                                         requests in flight at all times (a client flood)
 *   dvipa-bench SOCK bindwatch N BASE     BINDWATCH: listen() -> address up; close() -> down
 *   dvipa-bench SOCK shimbind N ADDR      under the preload shim: bind() returns with the address up
 *   dvipa-bench SOCK hold N BASE STEP FROM [RANK]
 *                                         hold (or, with RANK, stand by for) the N addresses
 *                                         BASE + FROM + i*STEP, pipelined; print "ready" when
 *                                         all are answered; a standby then prints
 *                                         "granted_all NS" (CLOCK_REALTIME) once all N are
 *                                         granted. Holds until killed (bench/cluster.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

static const char *sock_path;
static uint32_t next_seq = 1;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "dvipa-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int connect_daemon(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	return fd;
}

static uint32_t send_req(int fd, uint16_t type, const struct dv_addr *a, uint32_t rank)
{
	static struct dv_msgb b;
	uint32_t seq = next_seq++;

	dv_msgb_init(&b, type, seq);
	if (a)
		dv_msgb_put_addr(&b, a);
	if (rank)
		dv_msgb_put_u32(&b, DV_A_RANK, rank);
	if (dv_msgb_finish(&b) < 0 || send(fd, b.buf, b.len, 0) != (ssize_t)b.len)
		die("send");
	return seq;
}

/* Read one message; returns its decoded form. */
static void recv_reply(int fd, struct dv_reply *r)
{
	static uint8_t buf[DV_MSG_MAX];
	struct dv_msg m;
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	if (n <= 0)
		die("recv");
	if (dv_msg_parse(buf, (size_t)n, &m) < 0) {
		fprintf(stderr, "dvipa-bench: malformed reply\n");
		exit(1);
	}
	memset(r, 0, sizeof(*r));
	r->type = m.type;
	if (m.type != DV_MSG_RECORD && dv_reply_decode(&m, r) < 0) {
		fprintf(stderr, "dvipa-bench: undecodable reply\n");
		exit(1);
	}
}

/* Wait for the RESULT of seq (skipping records and events). */
static uint32_t wait_result(int fd, uint32_t seq, struct dv_reply *r)
{
	do
		recv_reply(fd, r);
	while (!(r->type == DV_MSG_RESULT && r->seq == seq));
	return r->result;
}

static void must_ok(uint32_t result, const struct dv_reply *r, const char *what)
{
	if (result != DV_R_OK && result != DV_R_PENDING) {
		fprintf(stderr, "dvipa-bench: %s: %s (%s)\n", what, dv_result_name((int)result), r->reason);
		exit(1);
	}
}

/* a:port as a sockaddr; its length. */
static socklen_t sockaddr_of(const struct dv_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = a->v4;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_addr = a->v6;
	s6->sin6_port = htons(port);
	return sizeof(*s6);
}

/* The loopback address of a's family. */
static struct dv_addr loopback_of(const struct dv_addr *a)
{
	struct dv_addr lo = {.family = a->family};

	if (a->family == AF_INET)
		lo.v4.s_addr = htonl(INADDR_LOOPBACK);
	else
		lo.v6 = in6addr_loopback;
	return lo;
}

/*
 * An address the kernel routes locally answers a TCP connection from the
 * loopback address: a reset (or a connection) when it is active; an
 * address of a ROUTED range that is not active is refused with an ICMP
 * error instead (EHOSTUNREACH, EACCES), or, once the kernel's ICMP rate
 * limit held the error back, not at all. A reset over 'lo' comes in
 * microseconds, so 100 ms without an answer is none.
 */
static int answers(const struct dv_addr *a)
{
	struct dv_addr lo = loopback_of(a);
	struct sockaddr_storage from, to;
	socklen_t flen = sockaddr_of(&lo, 0, &from), tlen = sockaddr_of(a, 9, &to);
	int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), r, err = 0;
	socklen_t elen = sizeof(err);

	if (fd < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&from, flen) < 0)
		die("bind to the loopback address");
	/* Non-blocking: an ICMP error that arrives while connect() still
	 * holds the socket is only a soft error to a blocking connect, which
	 * then waits for the SYN's retransmission. */
	r = connect(fd, (struct sockaddr *)&to, tlen);
	if (r < 0 && errno == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		if (poll(&p, 1, 100) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0)
			r = err ? -1 : 0;
		errno = err;
	}
	r = r == 0 || errno == ECONNREFUSED;
	close(fd);
	return r;
}

/* Whether the kernel's route to a is a local one (RTM_GETROUTE). */
static bool routed_locally(const struct dv_addr *a)
{
	struct {
		struct nlmsghdr nh;
		struct rtmsg rt;
		struct rtattr rta;
		uint8_t dst[16];
	} req = {0};
	union {
		struct nlmsghdr nh;
		char buf[4096];
	} ans;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	size_t alen = dv_addr_size(a);
	ssize_t n;

	if (fd < 0)
		die("netlink socket");
	req.nh.nlmsg_len = (uint32_t)(NLMSG_LENGTH(sizeof(req.rt)) + RTA_LENGTH(alen));
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.rt.rtm_family = a->family;
	req.rt.rtm_dst_len = (uint8_t)(8 * alen);
	req.rta.rta_type = RTA_DST;
	req.rta.rta_len = (unsigned short)RTA_LENGTH(alen);
	memcpy(req.dst, a->bytes, alen);
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0)
		die("RTM_GETROUTE");
	n = recv(fd, &ans, sizeof(ans), 0);
	close(fd);
	return n >= (ssize_t)NLMSG_LENGTH(sizeof(struct rtmsg)) && ans.nh.nlmsg_type == RTM_NEWROUTE &&
	       ((struct rtmsg *)NLMSG_DATA(&ans.nh))->rtm_type == RTN_LOCAL;
}

/* Usable: the kernel routes to it as a local address (a bind() test
 * would lie once BINDWATCH or an IPv6 ROUTED range has set
 * ip_nonlocal_bind), and it answers if it is routed locally whether
 * active or not: every address of a ROUTED range is. An IPv4 one is its
 * own source then; an IPv6 one is not (it is no address of an interface,
 * which source selection picks from), its route says. */
static int usable(const struct dv_addr *a)
{
	struct sockaddr_storage ss, got = {0};
	socklen_t len = sockaddr_of(a, 9, &ss), glen = sizeof(got);
	struct dv_addr src;
	int fd, r;

	fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	r = connect(fd, (struct sockaddr *)&ss, len) == 0 && getsockname(fd, (struct sockaddr *)&got, &glen) == 0 &&
	    dv_addr_from_sockaddr((struct sockaddr *)&got, glen, &src, NULL) == 0;
	close(fd);
	if (!r)
		return 0;
	if (a->family == AF_INET6)
		return dv_addr_eq(&src, a) || (routed_locally(a) && answers(a));
	return dv_addr_eq(&src, a) && answers(a);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%s n=%d p50=%.3f p99=%.3f max=%.3f ms\n", name, n, v[n / 2] / 1000,
	       v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000, v[n - 1] / 1000);
}

/* base + i: IPv4, or the low 32 bits of an IPv6 address. */
static void addr_nth(const struct dv_addr *base, unsigned i, struct dv_addr *ret)
{
	uint32_t v;

	*ret = *base;
	if (base->family == AF_INET) {
		ret->v4.s_addr = htonl(ntohl(base->v4.s_addr) + i);
		return;
	}
	memcpy(&v, &base->v6.s6_addr[12], 4);
	v = htonl(ntohl(v) + i);
	memcpy(&ret->v6.s6_addr[12], &v, 4);
}

static void bench_activate(int n, const char *addr, bool fresh)
{
	struct dv_addr base, a;
	struct dv_reply r;
	double *t = calloc((size_t)n, sizeof(double));
	int fd = connect_daemon();

	if (dv_addr_parse(addr, &base) < 0 || base.family != AF_INET)
		die("address");
	if (!fresh) {
		/* Warm-up: the first activation of an address includes its probe. */
		must_ok(wait_result(fd, send_req(fd, DV_MSG_ACTIVATE, &base, 0), &r), &r, "activate");
		must_ok(wait_result(fd, send_req(fd, DV_MSG_RELEASE, &base, 0), &r), &r, "release");
	}
	for (int i = 0; i < n; i++) {
		double t0;

		if (fresh)
			addr_nth(&base, (unsigned)i, &a);
		else
			a = base;
		t0 = now_us();
		must_ok(wait_result(fd, send_req(fd, DV_MSG_ACTIVATE, &a, 0), &r), &r, "activate");
		while (!usable(&a))
			;
		t[i] = now_us() - t0;
		must_ok(wait_result(fd, send_req(fd, DV_MSG_RELEASE, &a, 0), &r), &r, "release");
	}
	report(fresh ? "activation_first_time_with_probe" : "activation", t, n);
	close(fd);
	free(t);
}

static void bench_takeover(int n, const char *addr)
{
	struct dv_addr a;
	struct dv_reply r;
	double *t = calloc((size_t)n, sizeof(double));

	if (dv_addr_parse(addr, &a) < 0)
		die("address");
	for (int i = 0; i < n; i++) {
		int pfd[2], sb;
		pid_t child;
		char c;
		double t0;

		if (pipe(pfd) < 0)
			die("pipe");
		child = fork();
		if (child == 0) {
			/* The primary: hold the address, then wait to be killed. */
			struct dv_reply cr;
			int fd = connect_daemon();

			must_ok(wait_result(fd, send_req(fd, DV_MSG_ACTIVATE, &a, 0), &cr), &cr, "primary activate");
			(void)!write(pfd[1], "x", 1);
			pause();
			_exit(0);
		}
		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1)
			die("primary");
		close(pfd[0]);
		sb = connect_daemon();
		if (wait_result(sb, send_req(sb, DV_MSG_STANDBY, &a, 100), &r) != DV_R_PENDING) {
			fprintf(stderr, "dvipa-bench: standby not pending: %s\n", r.reason);
			exit(1);
		}
		t0 = now_us();
		kill(child, SIGKILL);
		do
			recv_reply(sb, &r);
		while (!(r.type == DV_MSG_EVENT && r.event == 1));
		while (!usable(&a))
			;
		t[i] = now_us() - t0;
		waitpid(child, NULL, 0);
		close(sb); /* releases: the address goes */
	}
	report("standby_takeover_after_kill9", t, n);
	free(t);
}

static long rss_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

/* Request type (DV_MSG_ACTIVATE, DV_MSG_RELEASE) for base .. base+n-1 on
 * fd, window requests in flight; seconds from the first request to the
 * last answer (a release's OK comes once its address is gone). */
static double pipelined(int fd, uint16_t type, const struct dv_addr *base, int n, int window)
{
	struct dv_addr a;
	struct dv_reply r;
	int sent = 0, done = 0;
	double t0 = now_us();

	while (done < n) {
		while (sent < n && sent - done < window) {
			addr_nth(base, (unsigned)sent, &a);
			send_req(fd, type, &a, 0);
			sent++;
		}
		recv_reply(fd, &r);
		if (r.type == DV_MSG_RESULT) {
			must_ok(r.result, &r, type == DV_MSG_ACTIVATE ? "activate" : "release");
			done++;
		}
	}
	return (now_us() - t0) / 1e6;
}

/* Activate base .. base+n-1 as pipelined() does, the last address checked
 * usable. */
static double activate_range(int fd, const struct dv_addr *base, int n, int window)
{
	double t = pipelined(fd, DV_MSG_ACTIVATE, base, n, window);
	struct dv_addr a;

	addr_nth(base, (unsigned)n - 1, &a);
	if (!usable(&a)) {
		fprintf(stderr, "dvipa-bench: last address not usable\n");
		exit(1);
	}
	return t;
}

/*
 * For many addresses at once: which of a[0..n) (indexes idx[0..n)) the
 * kernel still takes packets for. One UDP datagram from the loopback
 * address to each, port 9, on one socket with IP_RECVERR (IPV6_RECVERR),
 * WINDOW in flight: an active address answers port unreachable (nothing
 * listens there); an inactive one of a ROUTED range is refused by its
 * nftables rule (admin-prohibited), and one that is no address of the host
 * any more cannot be sent to from the loopback address (an error at once).
 * No answer within 100 ms is none, as in answers(). The kernel's ICMP rate
 * limits must be lifted (bench/scale.sh does, in its namespace). The n
 * still active are moved to the front of idx; their count is returned.
 */
#define SWEEP_WINDOW 1024
static int sweep(int fd, const struct dv_addr *base, int *idx, int n)
{
	static char active[1 << 20];
	bool v4 = base->family == AF_INET;
	uint32_t low0;
	int left = 0;

	memcpy(&low0, v4 ? (const uint8_t *)&base->v4 : &base->v6.s6_addr[12], 4);
	for (int from = 0; from < n; from += SWEEP_WINDOW) {
		int to = from + SWEEP_WINDOW < n ? from + SWEEP_WINDOW : n, sent = 0, answered = 0;

		for (int i = from; i < to; i++) {
			struct dv_addr a;
			struct sockaddr_storage ss;
			socklen_t sl;
			int r;

			addr_nth(base, (unsigned)idx[i], &a);
			sl = sockaddr_of(&a, 9, &ss);
			active[idx[i]] = 0;
			/* An earlier datagram's ICMP error is also the socket's
			 * pending error, which one send reports (and clears)
			 * instead of sending. */
			for (int tries = 0; tries < 3; tries++) {
				r = (int)sendto(fd, "", 0, 0, (struct sockaddr *)&ss, sl);
				if (r == 0 || (errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != EACCES))
					break;
			}
			if (r == 0)
				sent++;
			else if (errno != EINVAL && errno != ENETUNREACH && errno != EHOSTUNREACH && errno != EACCES &&
				 errno != EPERM && errno != EADDRNOTAVAIL)
				die("sendto");
		}
		while (answered < sent) {
			struct pollfd p = {.fd = fd, .events = 0};
			char cbuf[512];
			struct sockaddr_storage origin;
			struct iovec iov = {.iov_base = cbuf, .iov_len = 0};
			struct msghdr m = {.msg_name = &origin,
					   .msg_namelen = sizeof(origin),
					   .msg_iov = &iov,
					   .msg_iovlen = 1,
					   .msg_control = cbuf,
					   .msg_controllen = sizeof(cbuf)};
			struct cmsghdr *c;

			/* Errors queued make the socket POLLERR. */
			if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
				if (errno != EAGAIN)
					die("recvmsg MSG_ERRQUEUE");
				if (poll(&p, 1, 100) == 0)
					break; /* the rest: no answer */
				continue;
			}
			answered++;
			for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
				const struct sock_extended_err *e = (const void *)CMSG_DATA(c);
				struct dv_addr got;
				uint32_t low, k;
				/* Port unreachable: ICMP 3/3, ICMPv6 1/4. */
				bool port =
					v4 ? e->ee_origin == SO_EE_ORIGIN_ICMP && e->ee_type == 3 && e->ee_code == 3
					   : e->ee_origin == SO_EE_ORIGIN_ICMP6 && e->ee_type == 1 && e->ee_code == 4;

				if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
				      (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)) ||
				    !port ||
				    dv_addr_from_sockaddr((struct sockaddr *)&origin, m.msg_namelen, &got, NULL) < 0 ||
				    got.family != base->family)
					continue;
				memcpy(&low, v4 ? (const uint8_t *)&got.v4 : &got.v6.s6_addr[12], 4);
				k = ntohl(low) - ntohl(low0);
				if (k < sizeof(active))
					active[k] = 1;
			}
		}
		for (int i = from; i < to; i++)
			if (active[idx[i]])
				idx[left++] = idx[i];
	}
	return left;
}

/* Close fd (one client gone: its n holds end); seconds until none of the n
 * addresses is usable any more: sweeps of all the addresses still
 * answering, until none does (a check per address in turn costs a TCP
 * connection each, ~50-250 us of this client's CPU: longer than dvipad
 * takes for the release). A request on a new connection then makes sure
 * the daemon has seen the close through. */
static double release_range(int fd, const struct dv_addr *base, int n)
{
	struct dv_addr a, lo = loopback_of(base);
	struct sockaddr_storage los;
	socklen_t lol = sockaddr_of(&lo, 0, &los);
	int one = 1, size = 8 << 20, left = n, seen, *idx = calloc((size_t)n, sizeof(*idx));
	int u = socket(base->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	double t0, t;

	if (!idx || u < 0 ||
	    (base->family == AF_INET ? setsockopt(u, IPPROTO_IP, IP_RECVERR, &one, sizeof(one))
				     : setsockopt(u, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one))) < 0 ||
	    bind(u, (struct sockaddr *)&los, lol) < 0)
		die("sweep socket");
	if (setsockopt(u, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(u, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (n > (int)(1 << 20)) {
		fprintf(stderr, "dvipa-bench: at most %d addresses\n", 1 << 20);
		exit(2);
	}
	for (int i = 0; i < n; i++)
		idx[i] = i;
	/* Before the close: a sweep that does not see the n active would make
	 * any release look instant (an IPv6 address on the interface is not
	 * reached from ::1, say). Then the checks go one by one, as before
	 * sweeps. */
	seen = sweep(u, base, idx, n);
	if (seen != n)
		fprintf(stderr,
			"dvipa-bench: a sweep sees %d of the %d active addresses answer (the kernel's ICMP rate "
			"limits?): "
			"checking them one by one\n",
			seen, n);
	t0 = now_us();
	close(fd);
	while (seen == n && left > 0)
		left = sweep(u, base, idx, left);
	for (int i = 0; seen != n && i < n; i++) {
		addr_nth(base, (unsigned)i, &a);
		while (usable(&a))
			;
	}
	close(u);
	free(idx);
	t = (now_us() - t0) / 1e6;
	close(connect_daemon());
	return t;
}

/* The guarantee of a batch of activations: an address is usable when its
 * OK reply says so, not some time later. */
static void bench_granted(int n, const char *basestr)
{
	struct dv_addr base, a;
	struct dv_reply r;
	int fd = connect_daemon(), done = 0, late = 0;

	if (dv_addr_parse(basestr, &base) < 0 || n < 1)
		die("arguments");
	for (int i = 0; i < n; i++) {
		addr_nth(&base, (unsigned)i, &a);
		send_req(fd, DV_MSG_ACTIVATE, &a, 0);
	}
	while (done < n) {
		recv_reply(fd, &r);
		if (r.type != DV_MSG_RESULT)
			continue;
		must_ok(r.result, &r, "activate");
		done++;
		addr_nth(&base, r.seq - 1, &a); /* seq i + 1 asked for base + i */
		if (!usable(&a)) {
			char s[DV_ADDR_STRLEN];

			if (late++ < 5)
				fprintf(stderr, "dvipa-bench: %s granted but not usable\n", dv_addr_fmt(&a, s));
		}
	}
	printf("granted n=%d not_usable=%d\n", n, late);
	printf("released n=%d total=%.3f s\n", n, release_range(fd, &base, n));
	exit(late ? 1 : 0);
}

static void bench_many(int n, const char *basestr, pid_t daemon_pid)
{
	struct dv_addr base;
	int fd = connect_daemon();
	double t;

	if (dv_addr_parse(basestr, &base) < 0)
		die("address");
	t = activate_range(fd, &base, n, 1024);
	printf("many n=%d total=%.3f s rate=%.0f/s daemon_rss=%ld KiB daemon_hwm=%ld KiB\n", n, t, n / t,
	       rss_kib(daemon_pid, "VmRSS"), rss_kib(daemon_pid, "VmHWM"));
	printf("many_release n=%d total=%.3f s\n", n, release_range(fd, &base, n));
}

/* utime + stime of pid, in clock ticks (/proc/PID/stat fields 14 and 15). */
static long long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		die(path);
	buf[len] = 0;
	/* The command name may hold spaces: count fields after its ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
		fprintf(stderr, "dvipa-bench: cannot parse %s\n", path);
		exit(1);
	}
	return (long long)(ut + st);
}

/* pid's time on a CPU and waiting for one, in seconds (/proc/PID/schedstat):
 * on a loaded machine the second tells how much of a phase's time was
 * not dvipad's doing. */
struct sched {
	double run, wait;
};

static struct sched sched_of(pid_t pid)
{
	char path[64];
	unsigned long long run = 0, wait = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	f = fopen(path, "re");
	if (!f || fscanf(f, "%llu %llu", &run, &wait) != 2)
		die(path);
	fclose(f);
	return (struct sched){run / 1e9, wait / 1e9};
}

static void print_sched(struct sched before, struct sched after)
{
	printf(" [dvipad ran %.2f s, waited %.2f s for a CPU]", after.run - before.run, after.wait - before.wait);
}

/*
 * For each count: activate that many new addresses (one client, pipelined),
 * then release them (the client closes); each count starts where the
 * previous one ended, so that every activation includes its duplicate
 * probe. The cost curve is the time per activation at each count. With the
 * largest count held, also the daemon's RSS and its CPU over SECONDS (0:
 * not measured). Then the largest count again, released by one request
 * per address instead of the close. The window is wide because a first
 * activation waits for its probe (PROBE 2 100: 200 ms): 1024 in flight
 * would cap the rate at ~5,000/s whatever the daemon does.
 */
#define SCALE_WINDOW 16384
static void bench_scale(pid_t daemon_pid, double seconds, const char *basestr, int ncounts, char **counts)
{
	struct dv_addr base;
	int max = 0;

	if (dv_addr_parse(basestr, &base) < 0)
		die("address");
	for (int i = 0; i < ncounts; i++)
		if (atoi(counts[i]) > max)
			max = atoi(counts[i]);
	for (int i = 0; i < ncounts; i++) {
		int n = atoi(counts[i]), fd = connect_daemon();
		struct sched s0, s1;
		double act, rel;

		if (n <= 0) {
			fprintf(stderr, "dvipa-bench: bad count '%s'\n", counts[i]);
			exit(2);
		}
		s0 = sched_of(daemon_pid);
		act = activate_range(fd, &base, n, SCALE_WINDOW);
		s1 = sched_of(daemon_pid);
		printf("scale %s n=%d activate=%.3f s (%.1f us each)", base.family == AF_INET ? "ipv4" : "ipv6", n, act,
		       act * 1e6 / n);
		print_sched(s0, s1);
		printf(" rss=%ld KiB", rss_kib(daemon_pid, "VmRSS"));
		if (n == max && seconds > 0) {
			long long c0 = cpu_ticks(daemon_pid);
			double t0 = now_us();

			sleep((unsigned)seconds);
			printf(" steady_cpu=%.2f%% of a core over %.0f s",
			       (double)(cpu_ticks(daemon_pid) - c0) / (double)sysconf(_SC_CLK_TCK) * 100 /
				       ((now_us() - t0) / 1e6),
			       seconds);
		}
		fflush(stdout);
		s0 = sched_of(daemon_pid);
		rel = release_range(fd, &base, n);
		s1 = sched_of(daemon_pid);
		printf(" release=%.3f s (%.1f us each)", rel, rel * 1e6 / n);
		print_sched(s0, s1);
		printf("\n");
		fflush(stdout);
		addr_nth(&base, (unsigned)n, &base);
	}
	/* The largest count once more, from the first address on, each
	 * released by a request of its own: what one release costs must not
	 * grow with what the client holds. */
	if (max > 0) {
		int fd = connect_daemon();
		struct dv_addr first;
		struct sched s0, s1;
		double rel;

		if (dv_addr_parse(basestr, &first) < 0)
			die("address");
		(void)activate_range(fd, &first, max, SCALE_WINDOW);
		s0 = sched_of(daemon_pid);
		rel = pipelined(fd, DV_MSG_RELEASE, &first, max, SCALE_WINDOW);
		s1 = sched_of(daemon_pid);
		printf("scale %s n=%d released a request each=%.3f s (%.1f us each)",
		       first.family == AF_INET ? "ipv4" : "ipv6", max, rel, rel * 1e6 / max);
		print_sched(s0, s1);
		printf("\n");
		fflush(stdout);
		close(fd);
	}
}

static void bench_hold(int n, const char *basestr, unsigned step, unsigned from, unsigned rank)
{
	/* All at once: with the duplicate probes the claims then reach the
	 * cluster in one burst (tests/system: CPG flow control). */
	const int window = n;
	struct dv_addr base, a;
	struct dv_reply r;
	int fd = connect_daemon(), sent = 0, done = 0, granted = 0;
	struct timespec ts;

	if (dv_addr_parse(basestr, &base) < 0 || n < 1)
		die("arguments");
	while (done < n) {
		while (sent < n && sent - done < window) {
			addr_nth(&base, from + (unsigned)sent * step, &a);
			send_req(fd, rank ? DV_MSG_STANDBY : DV_MSG_ACTIVATE, &a, rank);
			sent++;
		}
		recv_reply(fd, &r);
		if (r.type == DV_MSG_RESULT) {
			must_ok(r.result, &r, rank ? "standby" : "activate");
			done++;
			granted += r.result == DV_R_OK && rank;
		}
	}
	printf("ready\n");
	fflush(stdout);
	if (rank) {
		while (granted < n) {
			recv_reply(fd, &r);
			if (r.type == DV_MSG_EVENT && r.event == 2) {
				fprintf(stderr, "dvipa-bench: lost: %s\n", r.reason);
				exit(1);
			}
			granted += r.type == DV_MSG_EVENT && r.event == 1;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		printf("granted_all %lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
		fflush(stdout);
	}
	for (;;)
		pause();
}

/* BINDWATCH: a listener on a not-yet-existing range address (allowed by
 * ip_nonlocal_bind) -> the address is installed; then the listener closes
 * -> the address is removed. */
static void bench_bindwatch(int n, const char *basestr)
{
	double *up = calloc((size_t)n, sizeof(double)), *down = calloc((size_t)n, sizeof(double));
	struct dv_addr base, a;

	if (dv_addr_parse(basestr, &base) < 0 || base.family != AF_INET)
		die("address");
	/* One address throughout: its first activation (i = -1, not counted)
	 * includes the duplicate probe; detection is what is measured. */
	a = base;
	for (int i = -1; i < n; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(9000)};
		int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		double t0;

		sa.sin_addr = a.v4;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
			die("bind (is ip_nonlocal_bind set?)");
		t0 = now_us();
		while (!usable(&a))
			usleep(100);
		if (i >= 0)
			up[i] = now_us() - t0;
		/* Spread the start over the watcher's poll period. */
		usleep((useconds_t)(rand() % 20000));
		t0 = now_us();
		close(fd);
		while (usable(&a))
			usleep(100);
		if (i >= 0)
			down[i] = now_us() - t0;
	}
	report("bindwatch_detection", up, n);
	report("last_socket_closed_to_address_removed", down, n);
	free(up);
	free(down);
}

/* Run under LD_PRELOAD=libdvipa-preload.so: bind() to a range address that
 * is not active, through the shim (activation included), until it returns;
 * then close and wait for the address to go. */
static void bench_shimbind(int n, const char *addr)
{
	double *t = calloc((size_t)n, sizeof(double));
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct dv_addr a;

	if (dv_addr_parse(addr, &a) < 0 || a.family != AF_INET)
		die("address");
	sa.sin_addr = a.v4;
	for (int i = -1; i < n; i++) { /* i = -1: the first activation probes */
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		double t0 = now_us();

		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("bind through the shim (is LD_PRELOAD set?)");
		if (i >= 0)
			t[i] = now_us() - t0;
		if (listen(fd, 1) < 0 || !usable(&a))
			die("listen");
		close(fd);
		while (usable(&a))
			usleep(100);
	}
	report("shim_bind_to_usable_address", t, n);
	free(t);
}

static void bench_rps(double seconds, const char *addr)
{
	struct dv_addr a;
	struct dv_reply r;
	int fd = connect_daemon();
	double t0 = now_us(), end = t0 + seconds * 1e6;
	long n = 0;

	if (dv_addr_parse(addr, &a) < 0)
		die("address");
	while (now_us() < end) {
		wait_result(fd, send_req(fd, DV_MSG_STATUS, &a, 0), &r);
		n++;
	}
	printf("status_requests_per_second n=%ld rate=%.0f/s\n", n, n / ((now_us() - t0) / 1e6));
	t0 = now_us();
	n = 0;
	end = t0 + seconds * 1e6;
	while (now_us() < end) {
		must_ok(wait_result(fd, send_req(fd, DV_MSG_ACTIVATE, &a, 0), &r), &r, "activate");
		must_ok(wait_result(fd, send_req(fd, DV_MSG_RELEASE, &a, 0), &r), &r, "release");
		n += 2;
	}
	printf("activate_release_requests_per_second n=%ld rate=%.0f/s\n", n, n / ((now_us() - t0) / 1e6));
	close(fd);
}

/* CONNS clients keep DEPTH status requests (the whole table) in flight
 * each, for SECONDS: what a local user can throw at the control socket. A
 * client the daemon hangs up on connects again, as an attacker would.
 * Prints how many were answered and how many connections were cut. */
#define FLOOD_DEPTH 50
static void flood_send(int fd, int count)
{
	static struct dv_msgb b;

	for (int k = 0; k < count; k++) {
		dv_msgb_init(&b, DV_MSG_STATUS, next_seq++);
		/* A hang-up shows as POLLHUP and is handled there. */
		if (dv_msgb_finish(&b) < 0 || send(fd, b.buf, b.len, MSG_NOSIGNAL) != (ssize_t)b.len)
			return;
	}
}

static void flood_fill(struct pollfd *p, int *left)
{
	p->fd = connect_daemon();
	p->events = POLLIN;
	flood_send(p->fd, FLOOD_DEPTH);
	*left = FLOOD_DEPTH;
}

static void bench_flood(int conns, double seconds)
{
	static uint8_t buf[DV_MSG_MAX];
	struct pollfd *pfd = calloc((size_t)(conns > 0 ? conns : 1), sizeof(*pfd));
	int *left = calloc((size_t)(conns > 0 ? conns : 1), sizeof(*left));
	double t0 = now_us(), end = t0 + seconds * 1e6;
	long answered = 0, cut = 0;

	if (!pfd || !left || conns <= 0)
		die("flood");
	for (int i = 0; i < conns; i++)
		flood_fill(&pfd[i], &left[i]);
	printf("flooding\n");
	fflush(stdout);
	while (now_us() < end) {
		if (poll(pfd, (nfds_t)conns, 100) < 0 && errno != EINTR)
			die("poll");
		for (int i = 0; i < conns; i++) {
			struct dv_msg m;
			ssize_t n;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				cut++;
				flood_fill(&pfd[i], &left[i]);
				continue;
			}
			if (dv_msg_parse(buf, (size_t)n, &m) < 0 || m.type != DV_MSG_RESULT)
				continue;
			answered++;
			if (--left[i] == 0) {
				flood_send(pfd[i].fd, FLOOD_DEPTH);
				left[i] = FLOOD_DEPTH;
			}
		}
	}
	printf("flood_status_answered n=%ld rate=%.0f/s connections_cut=%ld\n", answered,
	       answered / ((now_us() - t0) / 1e6), cut);
	for (int i = 0; i < conns; i++)
		close(pfd[i].fd);
	free(pfd);
	free(left);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: dvipa-bench SOCK "
				"activate|fresh|takeover|many|granted|scale|rps|flood|bindwatch|shimbind|hold "
				"ARGS...\n");
		return 2;
	}
	sock_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(argv[2], "activate") && argc == 5)
		bench_activate(atoi(argv[3]), argv[4], false);
	else if (!strcmp(argv[2], "fresh") && argc == 5)
		bench_activate(atoi(argv[3]), argv[4], true);
	else if (!strcmp(argv[2], "takeover") && argc == 5)
		bench_takeover(atoi(argv[3]), argv[4]);
	else if (!strcmp(argv[2], "granted") && argc == 5)
		bench_granted(atoi(argv[3]), argv[4]);
	else if (!strcmp(argv[2], "many") && argc == 6)
		bench_many(atoi(argv[3]), argv[4], (pid_t)atoi(argv[5]));
	else if (!strcmp(argv[2], "scale") && argc >= 7)
		bench_scale((pid_t)atoi(argv[3]), atof(argv[4]), argv[5], argc - 6, argv + 6);
	else if (!strcmp(argv[2], "hold") && (argc == 7 || argc == 8))
		bench_hold(atoi(argv[3]), argv[4], (unsigned)atoi(argv[5]), (unsigned)atoi(argv[6]),
			   argc == 8 ? (unsigned)atoi(argv[7]) : 0);
	else if (!strcmp(argv[2], "shimbind") && argc == 5)
		bench_shimbind(atoi(argv[3]), argv[4]);
	else if (!strcmp(argv[2], "bindwatch") && argc == 5)
		bench_bindwatch(atoi(argv[3]), argv[4]);
	else if (!strcmp(argv[2], "rps") && argc == 5)
		bench_rps(atof(argv[3]), argv[4]);
	else if (!strcmp(argv[2], "flood") && argc == 5)
		bench_flood(atoi(argv[3]), atof(argv[4]));
	else {
		fprintf(stderr, "dvipa-bench: bad arguments\n");
		return 2;
	}
	return 0;
}
