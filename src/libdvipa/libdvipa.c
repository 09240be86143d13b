/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdvipa: the client side of the control protocol. See libdvipa(3).
 *
 * Threads. Two locks per handle: req_lock serializes requests (they are
 * synchronous and one seq is in flight at a time), lock guards the socket
 * reads, the event queue and the small state. While a request waits for its
 * RESULT, the requesting thread owns the socket: it takes the socket out of
 * the epoll set behind dvipa_fd(), so a thread polling that fd is not woken
 * by datagrams it must not read, and it queues every EVENT it reads on the
 * way, which wakes the poller through the eventfd instead. Callbacks run
 * without any lock held, so they may call back into the library.
 */
#include "dvipa.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "ctlsock.h"
#include "listen.h"
#include "proto.h"

/* Pending events a handle keeps for dvipa_dispatch(). A caller that lets
 * more pile up while it makes requests loses its connection (see
 * queue_push()), which dvipad answers by ending every hold of the handle. */
#define EVENT_QUEUE_MAX 1024
#define EVENT_QUEUE_MIN 16

struct qevent {
	int type;
	char addr[DV_ADDR_STRLEN];
	char reason[DV_REASON_MAX];
};

struct dvipa {
	pthread_mutex_t req_lock; /* held for a whole request */
	pthread_mutex_t lock;	  /* everything below */
	int sock;
	int epfd; /* dvipa_fd(): sock + evfd */
	int evfd; /* readable while the queue is not empty */
	uint64_t id;
	uint32_t seq;
	bool dead;	  /* dvipad went away, or the stream became unusable */
	bool busy;	  /* a request is waiting for its RESULT */
	bool in_epoll;	  /* sock is in epfd */
	struct qevent *q; /* ring buffer */
	size_t q_cap, q_head, q_len;
	uint8_t rbuf[DV_MSG_MAX];
};

/* dvipa_reason() answers in the calling thread's view: every thread keeps
 * the reason of its own last request, tagged with the handle's id (not its
 * address, which malloc may reuse after dvipa_close()). */
static _Thread_local struct {
	uint64_t id;
	char reason[DV_REASON_MAX];
} tls_reason;

static atomic_uint_fast64_t next_handle_id = 1;

static void set_reason(dvipa_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(dvipa_t *h, const char *fmt, ...)
{
	va_list ap;

	tls_reason.id = h->id;
	va_start(ap, fmt);
	vsnprintf(tls_reason.reason, sizeof(tls_reason.reason), fmt, ap);
	va_end(ap);
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
		*fd = -1;
	}
}

const char *dvipa_strerror(int code)
{
	/* Same numbers as dv_result. */
	return dv_result_text(code);
}

/* ---- connection ---- */

/* dvipad's socket: path, else $DVIPA_SOCKET, else the default. -1 when
 * it is too long. */
static int socket_addr(const char *path, struct sockaddr_un *sa)
{
	size_t n;

	if (!path || !*path)
		path = secure_getenv("DVIPA_SOCKET");
	if (!path || !*path)
		path = DV_DEFAULT_SOCKET;
	n = strlen(path);
	if (n >= sizeof(sa->sun_path))
		return -1;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

int dvipa_open(dvipa_t **ret, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN};
	dvipa_t *h;
	int r;

	if (!ret) {
		errno = EINVAL;
		return -DVIPA_E_INVAL;
	}
	*ret = NULL;
	if (socket_addr(path, &sa) < 0) {
		errno = ENAMETOOLONG;
		return -DVIPA_E_INVAL;
	}

	h = calloc(1, sizeof(*h));
	if (!h) {
		errno = ENOMEM;
		return -DVIPA_E_INTERNAL;
	}
	h->sock = h->epfd = h->evfd = -1;
	h->id = atomic_fetch_add(&next_handle_id, 1);
	pthread_mutex_init(&h->req_lock, NULL);
	pthread_mutex_init(&h->lock, NULL);

	/* Bounded: a stopped dvipad with a full listen queue would otherwise
	 * keep a blocking connect() waiting for as long as it stays stopped. */
	h->sock = dv_ctl_connect(&sa, sizeof(sa), dv_now_ms() + DV_CTL_TIMEOUT_MS, connect);
	if (h->sock < 0) {
		errno = -h->sock;
		r = errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS ? -DVIPA_E_INTERNAL
											      : -DVIPA_E_UNREACH;
		h->sock = -1;
		goto fail;
	}
	/* The requests' send() blocks, as it always did; reads are
	 * MSG_DONTWAIT. */
	if (fcntl(h->sock, F_SETFL, fcntl(h->sock, F_GETFL) & ~O_NONBLOCK) < 0) {
		r = -DVIPA_E_INTERNAL;
		goto fail;
	}
	h->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->evfd < 0 || h->epfd < 0) {
		r = -DVIPA_E_INTERNAL;
		goto fail;
	}
	ev.data.fd = h->sock;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->sock, &ev) < 0) {
		r = -DVIPA_E_INTERNAL;
		goto fail;
	}
	ev.data.fd = h->evfd;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->evfd, &ev) < 0) {
		r = -DVIPA_E_INTERNAL;
		goto fail;
	}
	h->in_epoll = true;
	*ret = h;
	return 0;

fail:
	dvipa_close(h); /* keeps errno */
	return r;
}

void dvipa_close(dvipa_t *h)
{
	int saved = errno;

	if (!h)
		return;
	close_fd(&h->epfd);
	close_fd(&h->evfd);
	close_fd(&h->sock);
	free(h->q);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->req_lock);
	free(h);
	errno = saved;
}

int dvipa_fd(dvipa_t *h)
{
	if (!h) {
		errno = EINVAL;
		return -DVIPA_E_INVAL;
	}
	return h->epfd;
}

/* ---- event queue (lock held) ---- */

static void evfd_signal(dvipa_t *h)
{
	uint64_t one = 1;

	/* Cannot fail short of a counter overflow, which one write per
	 * empty-to-non-empty transition never reaches. */
	(void)!write(h->evfd, &one, sizeof(one));
}

static void evfd_drain(dvipa_t *h)
{
	uint64_t v;

	(void)!read(h->evfd, &v, sizeof(v));
}

/* The handle becomes unusable: dvipad sees the connection close and ends
 * the handle's holds, which keeps both sides in agreement. */
static void mark_dead(dvipa_t *h)
{
	if (h->dead)
		return;
	h->dead = true;
	shutdown(h->sock, SHUT_RDWR);
}

static bool queue_push(dvipa_t *h, const struct dv_reply *rep)
{
	struct qevent *e;

	if (h->q_len == h->q_cap) {
		size_t cap = h->q_cap ? h->q_cap * 2 : EVENT_QUEUE_MIN;
		struct qevent *q;

		if (h->q_cap >= EVENT_QUEUE_MAX)
			return false;
		if (cap > EVENT_QUEUE_MAX)
			cap = EVENT_QUEUE_MAX;
		q = calloc(cap, sizeof(*q));
		if (!q)
			return false;
		/* Unroll the ring into the new array. */
		for (size_t i = 0; i < h->q_len; i++)
			q[i] = h->q[(h->q_head + i) % h->q_cap];
		free(h->q);
		h->q = q;
		h->q_cap = cap;
		h->q_head = 0;
	}
	e = &h->q[(h->q_head + h->q_len) % h->q_cap];
	e->type = (int)rep->event;
	dv_addr_fmt(&rep->addr, e->addr);
	memcpy(e->reason, rep->reason, sizeof(e->reason));
	if (h->q_len++ == 0)
		evfd_signal(h);
	return true;
}

static void queue_pop(dvipa_t *h, struct qevent *ret)
{
	*ret = h->q[h->q_head];
	h->q_head = (h->q_head + 1) % h->q_cap;
	if (--h->q_len == 0)
		evfd_drain(h);
}

/*
 * Read one datagram (lock held). 1 and a RESULT in *ret for the caller, 0
 * when the datagram was consumed here (an EVENT queued, anything else
 * dropped), -EAGAIN when nothing is there (only with MSG_DONTWAIT), or
 * -DVIPA_E_UNREACH once the connection is unusable.
 */
static int map_result(uint32_t r);

static int read_one(dvipa_t *h, int flags, struct dv_reply *ret)
{
	struct iovec iov = {.iov_base = h->rbuf, .iov_len = sizeof(h->rbuf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct dv_msg m;
	ssize_t n;

	if (h->dead)
		return -DVIPA_E_UNREACH;
	do
		n = recvmsg(h->sock, &mh, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return -EAGAIN;
	if (n < 0) {
		int e = errno;
		int refused = dv_ctl_refusal(h->sock, ret);

		/* Closed on our request: the reason waits behind the reset. */
		if (refused >= 0) {
			set_reason(h, "%s", ret->reason);
			mark_dead(h);
			return map_result((uint32_t)refused);
		}
		set_reason(h, "receiving from dvipad: %s", strerror(e));
		mark_dead(h);
		return -DVIPA_E_UNREACH;
	}
	if (n == 0) {
		set_reason(h, "dvipad closed the connection");
		mark_dead(h);
		return -DVIPA_E_UNREACH;
	}
	/* A peer that breaks the protocol cannot be resynchronized: without a
	 * valid seq we could wait for a RESULT forever. */
	if ((mh.msg_flags & MSG_TRUNC) || dv_msg_parse(h->rbuf, (size_t)n, &m) < 0) {
		set_reason(h, "malformed message from dvipad");
		mark_dead(h);
		return -DVIPA_E_UNREACH;
	}
	if (m.type == DV_MSG_EVENT) {
		struct dv_reply rep;

		if (dv_reply_decode(&m, &rep) < 0) {
			set_reason(h, "malformed event from dvipad");
			mark_dead(h);
			return -DVIPA_E_UNREACH;
		}
		/* Event types this version does not know are skipped. */
		if (rep.event != DVIPA_EVENT_GRANTED && rep.event != DVIPA_EVENT_LOST)
			return 0;
		if (!queue_push(h, &rep)) {
			set_reason(h, "more than %d undispatched events", EVENT_QUEUE_MAX);
			mark_dead(h);
			return -DVIPA_E_UNREACH;
		}
		return 0;
	}
	if (m.type == DV_MSG_RESULT) {
		if (dv_reply_decode(&m, ret) < 0) {
			set_reason(h, "malformed result from dvipad");
			mark_dead(h);
			return -DVIPA_E_UNREACH;
		}
		/* Seq 0: dvipad refused this connection and closes it. */
		if (m.seq == 0) {
			set_reason(h, "%s", ret->reason);
			mark_dead(h);
			return map_result(ret->result);
		}
		return 1;
	}
	return 0; /* RECORDs and future types: not for us */
}

/* ---- requests ---- */

static int map_result(uint32_t r)
{
	if (r == DV_R_OK)
		return 0;
	if (r == DV_R_PENDING)
		return DVIPA_PENDING;
	if (r > 255)
		return -DVIPA_E_INTERNAL;
	return -(int)r;
}

static void sock_watch(dvipa_t *h, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = h->sock};

	if (on == h->in_epoll)
		return;
	if (epoll_ctl(h->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, h->sock, &ev) == 0)
		h->in_epoll = on;
}

static int request(dvipa_t *h, uint16_t type, const char *addr_text, uint32_t kind, uint32_t rank)
{
	struct dv_reply rep;
	struct dv_msgb *b;
	struct dv_addr a;
	uint32_t seq;
	int r;

	if (!h) {
		errno = EINVAL;
		return -DVIPA_E_INVAL;
	}
	if (dv_addr_parse(addr_text, &a) < 0) {
		set_reason(h, "'%s' is not a numeric IPv4 or IPv6 address", addr_text ? addr_text : "(null)");
		return -DVIPA_E_INVAL;
	}
	b = malloc(sizeof(*b)); /* 64 KiB: not for a caller's thread stack */
	if (!b) {
		set_reason(h, "out of memory");
		return -DVIPA_E_INTERNAL;
	}

	pthread_mutex_lock(&h->req_lock);
	pthread_mutex_lock(&h->lock);
	if (h->dead) {
		set_reason(h, "dvipad went away");
		r = -DVIPA_E_UNREACH;
		goto out;
	}
	seq = ++h->seq;
	if (seq == 0) /* 0 is the seq of EVENTs */
		seq = ++h->seq;
	dv_msgb_init(b, type, seq);
	dv_msgb_put_addr(b, &a);
	dv_msgb_put_u32(b, DV_A_KIND, kind);
	if (rank)
		dv_msgb_put_u32(b, DV_A_RANK, rank);
	if (dv_msgb_finish(b) < 0) {
		set_reason(h, "request too large");
		r = -DVIPA_E_INTERNAL;
		goto out;
	}
	if (send(h->sock, b->buf, b->len, MSG_NOSIGNAL) < 0) {
		int e = errno;
		int refused = dv_ctl_refusal(h->sock, &rep);

		if (refused >= 0) {
			set_reason(h, "%s", rep.reason);
			r = map_result((uint32_t)refused);
		} else {
			set_reason(h, "sending to dvipad: %s", strerror(e));
			r = -DVIPA_E_UNREACH;
		}
		mark_dead(h);
		goto out;
	}
	h->busy = true;
	sock_watch(h, false);

	for (;;) {
		struct pollfd pfd = {.fd = h->sock, .events = POLLIN};

		r = read_one(h, MSG_DONTWAIT, &rep);
		if (r == 1 && rep.seq == seq)
			break;
		if (r == 1 || r == 0)
			continue; /* a stale RESULT, or an EVENT now queued */
		if (r != -EAGAIN)
			goto out;
		/* dvipad answers after its ARP probe, a few hundred ms; the
		 * only bound is the connection itself, which poll reports. */
		pthread_mutex_unlock(&h->lock);
		while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			;
		pthread_mutex_lock(&h->lock);
	}
	set_reason(h, "%s", rep.reason);
	r = map_result(rep.result);

out:
	h->busy = false;
	sock_watch(h, true);
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_unlock(&h->req_lock);
	free(b);
	return r;
}

int dvipa_activate(dvipa_t *h, const char *addr)
{
	return request(h, DV_MSG_ACTIVATE, addr, DV_KIND_API, 0);
}

int dvipa_release(dvipa_t *h, const char *addr)
{
	return request(h, DV_MSG_RELEASE, addr, DV_KIND_API, 0);
}

int dvipa_standby(dvipa_t *h, const char *addr, unsigned rank)
{
	if (h && (rank < 1 || rank > 254)) {
		set_reason(h, "standby rank %u out of range 1..254", rank);
		return -DVIPA_E_INVAL;
	}
	return request(h, DV_MSG_STANDBY, addr, DV_KIND_API, rank);
}

/* ---- events ---- */

int dvipa_dispatch(dvipa_t *h, dvipa_event_fn fn, void *userdata)
{
	struct dv_reply unused;
	size_t left;
	int delivered = 0;
	bool dead;

	if (!h) {
		errno = EINVAL;
		return -DVIPA_E_INVAL;
	}

	pthread_mutex_lock(&h->lock);
	/* While a request is in flight its thread reads the socket (and
	 * queues what it finds); reading here could steal its RESULT. */
	if (!h->busy) {
		while (h->q_len < EVENT_QUEUE_MAX && read_one(h, MSG_DONTWAIT, &unused) >= 0)
			;
	}
	/* Deliver what is queued now, not what callbacks cause to arrive:
	 * a callback that makes requests must not keep us here forever. */
	left = h->q_len;
	pthread_mutex_unlock(&h->lock);

	while (left-- > 0) {
		struct qevent e;
		struct dvipa_event ev;

		pthread_mutex_lock(&h->lock);
		if (h->q_len == 0) { /* another thread dispatched them */
			pthread_mutex_unlock(&h->lock);
			break;
		}
		queue_pop(h, &e);
		pthread_mutex_unlock(&h->lock);

		ev.type = e.type;
		memcpy(ev.addr, e.addr, sizeof(ev.addr));
		ev.reason = e.reason;
		if (fn)
			fn(h, &ev, userdata);
		delivered++;
	}

	pthread_mutex_lock(&h->lock);
	dead = h->dead && h->q_len == 0;
	pthread_mutex_unlock(&h->lock);
	if (dead && delivered == 0) {
		errno = ECONNRESET;
		return -DVIPA_E_UNREACH;
	}
	return delivered;
}

const char *dvipa_reason(dvipa_t *h)
{
	/* Handles' ids start at 1; 0 is dvipa_listen()'s. */
	if (h ? tls_reason.id != h->id : tls_reason.id != 0)
		return "";
	return tls_reason.reason;
}

/*
 * SYSPLEXPORTS: the node's slice of a's ports for fd (IP_LOCAL_PORT_RANGE),
 * so that the distributor sends the replies here. 0 (also where any port
 * will do), dvipad's refusal, or -DVIPA_E_UNREACH: without an answer the
 * port could be one whose replies go to another node.
 */
static int source_ports(int fd, const struct dv_addr *a)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct dv_reply rep;
	uint32_t range;

	if (socket_addr(NULL, &sa) < 0)
		return -DVIPA_E_INVAL;
	if (dv_ctl_source_ports(&sa, sizeof(sa), a, dv_now_ms() + DV_CTL_TIMEOUT_MS, connect, &rep) < 0)
		return -DVIPA_E_UNREACH;
	if (rep.result != DV_R_OK)
		return map_result(rep.result);
	if (!rep.port_lo)
		return 0;
	range = (uint32_t)rep.port_hi << 16 | rep.port_lo;
	return setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof(range)) < 0 ? -DVIPA_E_INTERNAL : 0;
}

int dvipa_bind_source(int fd, const char *addr)
{
	struct sockaddr_storage ss = {0};
	struct dv_addr a;
	socklen_t len = sizeof(ss);
	int one = 1, family, r;

	if (fd < 0 || dv_addr_parse(addr, &a) < 0)
		return -DVIPA_E_INVAL;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -DVIPA_E_INVAL;
	family = ss.ss_family;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET && a.family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = a.v4;
		len = sizeof(*s4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		if (a.family == AF_INET) {
			s6->sin6_addr.s6_addr[10] = 0xff;
			s6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&s6->sin6_addr.s6_addr[12], &a.v4, 4);
		} else {
			s6->sin6_addr = a.v6;
		}
		len = sizeof(*s6);
	} else {
		return -DVIPA_E_INVAL;
	}
	/* Where ip_nonlocal_bind is set (a BINDWATCH range), the bind below
	 * would succeed for an address another node has, and the traffic
	 * would leave with a source this node does not own. */
	if (!dv_addr_is_local(&a, NULL))
		return -DVIPA_E_NOTHELD;
	r = source_ports(fd, &a);
	if (r < 0)
		return r;
	/* Best effort: without it the bind reserves an ephemeral port now. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return errno == EADDRNOTAVAIL ? -DVIPA_E_NOTHELD : -DVIPA_E_INVAL;
	return 0;
}

/* ---- listen sets ---- */

static void listen_reason(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void listen_reason(const char *fmt, ...)
{
	va_list ap;

	tls_reason.id = 0;
	va_start(ap, fmt);
	vsnprintf(tls_reason.reason, sizeof(tls_reason.reason), fmt, ap);
	va_end(ap);
}

/* A failed socket call on pair i: the code, with errno kept. */
static int listen_sock_error(const struct dv_listen_pair *p, size_t i, const char *call)
{
	char pb[DV_LISTEN_PAIR_STRLEN];
	int e = errno;

	listen_reason("pair %zu %s: %s: %s", i + 1, dv_listen_pair_fmt(p, pb), call, strerror(e));
	errno = e;
	if (e == EADDRINUSE)
		return -DVIPA_E_HELD;
	if (e == EACCES || e == EPERM)
		return -DVIPA_E_PERM;
	if (e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS)
		return -DVIPA_E_INTERNAL;
	return -DVIPA_E_KERNEL;
}

/* A socket for p with SO_REUSEPORT, bound unless it is the VIPA's (which
 * is bound once claimed). -1 with the reason said. */
static int listen_socket(const struct dv_listen_pair *p, size_t i, int *ret_err)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int one = 1, fd;

	fd = socket(p->addr.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*ret_err = listen_sock_error(p, i, "socket");
		return -1;
	}
	/* ANYADDR6 is IPv6's wildcard only: IPv4 has its own. */
	if ((p->addr.family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		*ret_err = listen_sock_error(p, i, "setsockopt");
		close_fd(&fd);
		return -1;
	}
	if (i == 0)
		return fd;
	if (p->addr.family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		*s4 = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(p->port), .sin_addr = p->addr.v4};
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		*s6 = (struct sockaddr_in6){
			.sin6_family = AF_INET6, .sin6_port = htons(p->port), .sin6_addr = p->addr.v6};
		len = sizeof(*s6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		*ret_err = listen_sock_error(p, i, "bind");
		close_fd(&fd);
		return -1;
	}
	return fd;
}

static int listen_bind_vipa(int fd, const struct dv_listen_pair *p)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(p->port), .sin_addr = p->addr.v4};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(p->port), .sin6_addr = p->addr.v6};

	if (p->addr.family == AF_INET)
		return bind(fd, (struct sockaddr *)&s4, sizeof(s4));
	return bind(fd, (struct sockaddr *)&s6, sizeof(s6));
}

/*
 * The order keeps dvipad out of a failure: the set is checked, the
 * wildcards bound, and only then is the VIPA claimed; a refusal leaves
 * nothing behind. A failure after the claim (the VIPA's bind or a listen)
 * closes the claim's connection with no socket bound, and dvipad ends the
 * hold after its short grace.
 */
int dvipa_listen(const char *const pairs[], size_t n, int backlog, int ret_fds[])
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct dv_listen_set set = {0};
	int fds[DV_LISTEN_MAX], conn = -1, r = 0;
	char pb[DV_LISTEN_PAIR_STRLEN];
	struct dv_reply rep;
	size_t i;

	listen_reason("%s", "");
	if (!pairs || !ret_fds || n == 0 || n > DVIPA_LISTEN_MAX) {
		listen_reason("a listen set has 1 to %d pairs and a place for their descriptors", DVIPA_LISTEN_MAX);
		errno = EINVAL;
		return -DVIPA_E_INVAL;
	}
	for (i = 0; i < n; i++) {
		struct dv_listen_pair p;
		const char *why;

		if (!pairs[i] || dv_listen_pair_parse(pairs[i], strlen(pairs[i]), &p, &why) < 0 ||
		    dv_listen_set_add(&set, &p, &why) < 0) {
			listen_reason("pair %zu '%s': %s", i + 1, pairs[i] ? pairs[i] : "(null)",
				      pairs[i] ? why : "NULL");
			errno = EINVAL;
			return -DVIPA_E_INVAL;
		}
	}
	if (socket_addr(NULL, &sa) < 0) {
		listen_reason("$DVIPA_SOCKET is too long for a socket path");
		errno = ENAMETOOLONG;
		return -DVIPA_E_INVAL;
	}
	/* Where sock_diag cannot tell (-errno), the bind below decides as
	 * it can. */
	for (i = 0; i < n; i++)
		if (dv_listen_taken(&set.pair[i]) > 0) {
			listen_reason("pair %zu %s: a TCP socket listens there already; a listen set does not "
				      "share its ports with other sockets",
				      i + 1, dv_listen_pair_fmt(&set.pair[i], pb));
			errno = EADDRINUSE;
			return -DVIPA_E_HELD;
		}

	for (i = 0; i < n; i++)
		fds[i] = -1;
	for (i = 0; i < n; i++) {
		fds[i] = listen_socket(&set.pair[i], i, &r);
		if (fds[i] < 0)
			goto fail;
	}
	r = dv_listen_claim(&sa, sizeof(sa), &set.pair[0].addr, dv_now_ms() + DV_CTL_TIMEOUT_MS, &conn, &rep);
	if (r < 0) {
		listen_reason("pair 1 %s: cannot reach dvipad at %s: %s", dv_listen_pair_fmt(&set.pair[0], pb),
			      sa.sun_path, strerror(-r));
		errno = -r;
		r = -DVIPA_E_UNREACH;
		goto fail;
	}
	if (r > 0) {
		listen_reason("pair 1 %s: %s", dv_listen_pair_fmt(&set.pair[0], pb),
			      *rep.reason ? rep.reason : dv_result_text((int)rep.result));
		r = map_result((uint32_t)r);
		if (r >= 0) /* PENDING: not an answer to an ACTIVATE */
			r = -DVIPA_E_INTERNAL;
		errno = EADDRNOTAVAIL;
		goto fail;
	}
	/* The connection ends only now: the hold is kept by sock_diag once
	 * the socket is bound. */
	r = listen_bind_vipa(fds[0], &set.pair[0]);
	close_fd(&conn);
	if (r < 0) {
		r = listen_sock_error(&set.pair[0], 0, "bind");
		goto fail;
	}
	for (i = 0; i < n; i++)
		if (listen(fds[i], backlog) < 0) {
			r = listen_sock_error(&set.pair[i], i, "listen");
			goto fail;
		}
	memcpy(ret_fds, fds, n * sizeof(int));
	return 0;

fail:
	for (i = 0; i < n; i++)
		close_fd(&fds[i]);
	return r;
}
