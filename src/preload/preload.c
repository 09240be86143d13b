/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libdvipa-preload.so: dynamic VIPAs for unmodified programs, through
 * LD_PRELOAD. See libdvipa-preload(8).
 *
 * bind() to an address inside one of dvipad's ranges is a claim, whether
 * or not the address is local already: the shim asks dvipad for a socket
 * hold (KIND 3, as the calling uid: dvipad checks SO_PEERCRED) first and
 * binds only once it is granted; a refusal fails the bind. Which addresses
 * are in a range the shim learns from the range table dvipad publishes
 * next to its socket (rangetab.h), mapped read-only: a bind() to a specific
 * address outside every range costs a lookup in that memory, a bind() to a
 * wildcard or loopback address one indirect call and a few compares; no
 * environment lookup, no allocation, no lock. Without a table (no dvipad,
 * an older one) a bind() that fails with EADDRNOTAVAIL is still a claim.
 * connect(), sendto() and sendmsg() look at their socket only when
 * DVIPA_SOURCE is set.
 *
 * DVIPA_LISTEN names a listen set (listen.h): a TCP socket the program
 * binds to one of its pairs gets SO_REUSEPORT first, so that the VIPA and
 * the wildcard of one port can both be bound, which the kernel allows
 * only when both sockets have it. Only where the program did not set it
 * itself, and only where no socket listens on that very pair already:
 * a socket with SO_REUSEPORT joins such a listener's group and shares
 * its connections, where without it the bind fails with EADDRINUSE.
 *
 * Constraints, and how they are met:
 *
 * - Signal handlers may call bind() and friends. Every path, slow ones
 *   included, uses only async-signal-safe calls: socket, connect, send,
 *   sendto, recv, recvmsg, poll, close, getsockname, getsockopt,
 *   setsockopt, writev, clock_gettime, memcpy. No
 *   malloc, no stdio, no locks. Requests are encoded by a small stack-only
 *   encoder (a request is under 64 bytes) instead of proto's dv_msgb, whose
 *   64 KiB buffer is too much for a signal stack and whose static use
 *   would need a lock. Replies are decoded by proto.c's parser, which only
 *   reads its input. The stack use of the slow path is about 1.5 KiB;
 *   a bind of a DVIPA_LISTEN pair adds about 1.5 KiB (a configuration
 *   copy with its set, the sock_diag answer).
 * - fork(): there is no lock to inherit half-taken, and each activation
 *   uses its own connection, closed before bind() returns (or inherited
 *   harmlessly by a child forked meanwhile).
 * - A program must not hang on a stopped or wedged dvipad: its socket is
 *   non-blocking, and connect, send and the wait for the answer share one
 *   deadline, DV_CTL_TIMEOUT_S (ctlsock.h). Only a standby, once
 *   registered, waits without limit for its grant: that is what it asked.
 * - Threads: the only shared state is the configuration (written once,
 *   published with an atomic), the real functions (atomic pointers; racing
 *   resolvers store the same value) and the "auto" source slot (a seqlock
 *   whose writers never wait).
 *
 * The environment is read once, by the constructor: a program that changes
 * DVIPA_* with setenv() later is not followed, and the fast paths never
 * scan environ.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "ctlsock.h"
#include "listen.h"
#include "proto.h"
#include "rangetab.h"
#include "result.h"

#define DV_EXPORT __attribute__((visibility("default")))

/* With _GNU_SOURCE, glibc declares the sockaddr arguments of bind(),
 * connect() and sendto() as transparent unions; the definitions below must
 * match the declarations. */
#ifdef __USE_GNU
#define SA_PTR(a) ((a).__sockaddr__)
#else
#define SA_PTR(a) (a)
#endif

#define STR_(x) #x
#define STR(x) STR_(x)
/* What the deadline of an exchange with dvipad is, in messages. */
#define LIMIT_TEXT "within " STR(DV_CTL_TIMEOUT_S) " s"

/* Replies are a RESULT or an EVENT: header, three small attributes and a
 * reason of at most DV_REASON_MAX bytes, about 310 bytes in version 1. */
#define REPLY_BUF 1024

#define ALIGN4(n) (((n) + 3u) & ~(size_t)3u)
#define ATTR_SIZE(vlen) ALIGN4(sizeof(struct dv_attr) + (vlen))
/* ADDR (family byte + 16), KIND, RANK. */
#define REQ_MAX (sizeof(struct dv_msg_hdr) + ATTR_SIZE(1 + 16) + 2 * ATTR_SIZE(sizeof(uint32_t)))

#define EVENT_GRANTED 1
#define EVENT_LOST 2

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);

/* ---- the real functions ---- */

/*
 * Fallbacks, should dlsym() find no next definition (a libc without these
 * symbols cannot really happen, but a NULL call must not): the system calls
 * themselves.
 */
static int sys_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	return (int)syscall(SYS_bind, fd, sa, len);
}

static int sys_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	return (int)syscall(SYS_connect, fd, sa, len);
}

static ssize_t sys_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len)
{
	return syscall(SYS_sendto, fd, buf, n, flags, sa, len);
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return syscall(SYS_sendmsg, fd, msg, flags);
}

static _Atomic(bind_fn) real_bind_p;
static _Atomic(connect_fn) real_connect_p;
static _Atomic(sendto_fn) real_sendto_p;
static _Atomic(sendmsg_fn) real_sendmsg_p;

/* Resolved by the constructor; lazily if a function is called before it
 * ran (by another library's constructor). dlsym() is idempotent, so racing
 * threads store the same pointer and no lock or once-flag is needed. */
#define REAL(name)                                                                                                     \
	static name##_fn real_##name(void)                                                                             \
	{                                                                                                              \
		name##_fn f = atomic_load_explicit(&real_##name##_p, memory_order_relaxed);                            \
		if (!f) {                                                                                              \
			int saved = errno;                                                                             \
			f = (name##_fn)dlsym(RTLD_NEXT, #name);                                                        \
			if (!f)                                                                                        \
				f = sys_##name;                                                                        \
			atomic_store_explicit(&real_##name##_p, f, memory_order_relaxed);                              \
			errno = saved;                                                                                 \
		}                                                                                                      \
		return f;                                                                                              \
	}
REAL(bind)
REAL(connect)
REAL(sendto)
REAL(sendmsg)
#undef REAL

/* ---- configuration ---- */

enum source_mode {
	SOURCE_NONE,
	SOURCE_ADDR,
	SOURCE_AUTO,
	SOURCE_BAD, /* DVIPA_SOURCE malformed: as if unset, and said once */
};

struct config {
	bool debug;
	bool quiet;	  /* DVIPA_QUIET: no line on a failed activation */
	int standby_rank; /* 0 unset, -1 malformed, else 1..254 */
	enum source_mode source;
	struct dv_addr source_addr;
	struct dv_listen_set listen;	    /* DVIPA_LISTEN; n 0 when unset or bad */
	char listen_err[DV_LISTEN_ERR_MAX]; /* DVIPA_LISTEN malformed: why; said once */
	bool socket_bad;		    /* DVIPA_SOCKET too long for a UNIX socket path */
	struct sockaddr_un sock;
	socklen_t sock_len;
	char rangetab_path[sizeof(((struct sockaddr_un *)0)->sun_path) + sizeof(DV_RANGETAB_SUFFIX)];
};

static struct config config;
static atomic_int config_state; /* 0 not loaded, 1 being loaded, 2 ready */

/* secure_getenv: in a set-uid program the environment belongs to the
 * caller, who must not choose the daemon or the source address. */
static const char *env(const char *name)
{
	const char *v = secure_getenv(name);

	return v && *v ? v : NULL;
}

static bool addr_is_special(const struct dv_addr *a)
{
	static const uint8_t zero[16];

	if (a->family == AF_INET) {
		uint8_t b0 = a->bytes[0];

		return memcmp(a->bytes, zero, 4) == 0 || b0 == 127 || (b0 >= 224 && b0 < 240);
	}
	return memcmp(a->bytes, zero, 16) == 0 || IN6_IS_ADDR_LOOPBACK(&a->v6) || a->bytes[0] == 0xff;
}

static int parse_rank(const char *s)
{
	int v = 0;

	if (!s)
		return 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || v > 254)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= 254 ? v : -1;
}

static void config_load(struct config *c)
{
	const char *v;
	size_t n;

	memset(c, 0, sizeof(*c));
	v = env("DVIPA_DEBUG");
	c->debug = v && strcmp(v, "0") != 0;
	v = env("DVIPA_QUIET");
	c->quiet = v && strcmp(v, "0") != 0;
	c->standby_rank = parse_rank(env("DVIPA_STANDBY"));

	v = env("DVIPA_SOURCE");
	if (!v)
		c->source = SOURCE_NONE;
	else if (strcmp(v, "auto") == 0)
		c->source = SOURCE_AUTO;
	else if (dv_addr_parse(v, &c->source_addr) == 0 && !addr_is_special(&c->source_addr))
		c->source = SOURCE_ADDR;
	else
		c->source = SOURCE_BAD;

	v = env("DVIPA_LISTEN");
	if (v && dv_listen_set_parse(v, &c->listen, c->listen_err, sizeof(c->listen_err)) < 0)
		c->listen.n = 0;

	v = env("DVIPA_SOCKET");
	if (!v)
		v = DV_DEFAULT_SOCKET;
	n = strlen(v);
	c->sock.sun_family = AF_UNIX;
	if (n >= sizeof(c->sock.sun_path)) {
		c->socket_bad = true;
	} else {
		memcpy(c->sock.sun_path, v, n + 1);
		c->sock_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
		(void)dv_rangetab_path(v, c->rangetab_path, sizeof(c->rangetab_path));
	}
}

/*
 * The configuration, loaded at most once into the global. A caller that
 * comes while another thread (or the code a signal interrupted) is loading
 * it does not wait: it loads its own copy into *tmp, from the same
 * environment, with the same result.
 */
static const struct config *get_config(struct config *tmp)
{
	int expected = 0;

	if (atomic_load_explicit(&config_state, memory_order_acquire) == 2)
		return &config;
	if (atomic_compare_exchange_strong_explicit(&config_state, &expected, 1, memory_order_acquire,
						    memory_order_relaxed)) {
		config_load(&config);
		atomic_store_explicit(&config_state, 2, memory_order_release);
		return &config;
	}
	config_load(tmp);
	return tmp;
}

__attribute__((constructor)) static void preload_init(void)
{
	struct config tmp;

	real_bind();
	real_connect();
	real_sendto();
	real_sendmsg();
	(void)get_config(&tmp);
}

/* ---- dvipad's range table ---- */

/*
 * The mapped table, or NULL. It is looked up again at most once a second
 * (a coarse clock read on the way): dvipad rewrites the file in place, but
 * the file may have been removed and created anew (a restart that cleared
 * /run/dvipa). An old mapping is never unmapped, as another thread may be
 * reading it; that costs one mapping per replaced file.
 */
static _Atomic(const struct dv_rangetab *) rangetab;
static atomic_ulong rangetab_dev, rangetab_ino;
static _Atomic int64_t rangetab_next_ms;

static int64_t coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rangetab_remap(const struct config *c)
{
	const struct dv_rangetab *t = atomic_load_explicit(&rangetab, memory_order_acquire);
	struct stat st;
	void *m;
	int fd;

	if (!c->rangetab_path[0])
		return;
	fd = open(c->rangetab_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return; /* no dvipad, or not yet: keep what we have */
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct dv_rangetab) ||
	    (t && st.st_dev == atomic_load(&rangetab_dev) && st.st_ino == atomic_load(&rangetab_ino))) {
		close(fd);
		return;
	}
	m = mmap(NULL, sizeof(struct dv_rangetab), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return;
	atomic_store(&rangetab_dev, st.st_dev);
	atomic_store(&rangetab_ino, st.st_ino);
	atomic_store_explicit(&rangetab, m, memory_order_release);
}

/*
 * The table's first-byte bitmaps (IPv4, then IPv6), copied into the
 * process at each look at the file: a bind() to an address no range can
 * hold then touches no page of the mapping, which costs a TLB miss per
 * call where system calls flush the TLB. A range added by a reload is
 * seen within a second.
 */
static _Atomic uint64_t first_copy[8];

static void first_copy_refresh(void)
{
	const struct dv_rangetab *t = atomic_load_explicit(&rangetab, memory_order_acquire);
	uint64_t v[8] = {0};

	for (int tries = 0; t && tries < 64; tries++) {
		uint32_t s1 = __atomic_load_n(&t->hdr.seq, __ATOMIC_ACQUIRE);

		if (s1 & 1)
			continue;
		memcpy(v, t->hdr.first4, sizeof(t->hdr.first4));
		memcpy(v + 4, t->hdr.first6, sizeof(t->hdr.first6));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&t->hdr.seq, __ATOMIC_RELAXED) == s1)
			break;
		memset(v, 0xff, sizeof(v)); /* unsettled: let every address through to the lookup */
	}
	for (size_t i = 0; i < 8; i++)
		atomic_store_explicit(&first_copy[i], v[i], memory_order_relaxed);
}

/* Whether a lies in one of dvipad's ranges; false without a table. */
static bool in_range(const struct config *c, const struct dv_addr *a)
{
	const struct dv_rangetab *t;
	int64_t now = coarse_ms(), next = atomic_load_explicit(&rangetab_next_ms, memory_order_relaxed);
	unsigned b = a->bytes[0], w = (a->family == AF_INET6 ? 4u : 0u) + b / 64;

	/* One caller a second looks at the file; the others go on. */
	if (now >= next && atomic_compare_exchange_strong_explicit(&rangetab_next_ms, &next, now + 1000,
								   memory_order_relaxed, memory_order_relaxed)) {
		int saved = errno;

		rangetab_remap(c);
		first_copy_refresh();
		errno = saved;
	}
	if (!(atomic_load_explicit(&first_copy[w], memory_order_relaxed) >> (b % 64) & 1))
		return false;
	t = atomic_load_explicit(&rangetab, memory_order_acquire);
	return t && dv_rangetab_lookup(t, a) == 1;
}

/* ---- the VIPAs this process activated ---- */

/*
 * One address, shared by all threads and signal handlers: a seqlock over
 * atomics, the sequence odd while a store is under way. A store never
 * waits (it gives up if another one is under way: that one is as recent),
 * and a load retries a bounded number of times, because the store it sees
 * in progress may be the very code its signal handler interrupted.
 */
struct addr_slot {
	atomic_uint seq; /* 0: never stored */
	atomic_uint family;
	_Atomic uint64_t w[2];
};

/* The VIPA activated last (DVIPA_SOURCE=auto), and the one activated last
 * in a SOURCEVIPA range (the source when DVIPA_SOURCE is unset). */
static struct addr_slot last_vipa, range_source_vipa;

static void slot_store(struct addr_slot *slot, const struct dv_addr *a)
{
	unsigned s = atomic_load_explicit(&slot->seq, memory_order_relaxed);
	uint64_t w[2];

	if ((s & 1) ||
	    !atomic_compare_exchange_strong_explicit(&slot->seq, &s, s + 1, memory_order_relaxed, memory_order_relaxed))
		return;
	atomic_thread_fence(memory_order_release);
	memcpy(w, a->bytes, sizeof(w));
	atomic_store_explicit(&slot->family, a->family, memory_order_relaxed);
	atomic_store_explicit(&slot->w[0], w[0], memory_order_relaxed);
	atomic_store_explicit(&slot->w[1], w[1], memory_order_relaxed);
	atomic_store_explicit(&slot->seq, s + 2, memory_order_release);
}

static bool slot_load(struct addr_slot *slot, struct dv_addr *ret)
{
	for (int i = 0; i < 64; i++) {
		unsigned s1 = atomic_load_explicit(&slot->seq, memory_order_acquire), s2;
		unsigned family;
		uint64_t w[2];

		if (s1 == 0)
			return false;
		if (s1 & 1)
			continue;
		family = atomic_load_explicit(&slot->family, memory_order_relaxed);
		w[0] = atomic_load_explicit(&slot->w[0], memory_order_relaxed);
		w[1] = atomic_load_explicit(&slot->w[1], memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&slot->seq, memory_order_relaxed);
		if (s1 != s2)
			continue;
		if (family != AF_INET && family != AF_INET6)
			return false;
		memset(ret, 0, sizeof(*ret));
		ret->family = (uint8_t)family;
		memcpy(ret->bytes, w, sizeof(w));
		return true;
	}
	return false;
}

static bool slot_used(struct addr_slot *slot)
{
	return atomic_load_explicit(&slot->seq, memory_order_relaxed) != 0;
}

/* Whether connect() and sendto() need to look at their socket: the fast
 * path when DVIPA_SOURCE is unset and no SOURCEVIPA address was activated. */
static bool source_wanted(void)
{
	if (atomic_load_explicit(&config_state, memory_order_acquire) != 2)
		return true; /* not loaded yet: take the slow path, which loads it */
	return config.source != SOURCE_NONE || slot_used(&range_source_vipa);
}

/* Whether bind() needs to look for a pair of DVIPA_LISTEN: not when it is
 * unset, the fast path of a bind() to a wildcard address. */
static bool listen_wanted(void)
{
	if (atomic_load_explicit(&config_state, memory_order_acquire) != 2)
		return true; /* not loaded yet: take the slow path, which loads it */
	return config.listen.n != 0 || config.listen_err[0];
}

/* ---- async-signal-safe text ---- */

static char *put_str(char *p, char *end, const char *s)
{
	while (*s && p < end)
		*p++ = *s++;
	return p;
}

static char *put_uint(char *p, char *end, unsigned v, unsigned base)
{
	char tmp[12];
	size_t n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && n < sizeof(tmp));
	while (n && p < end)
		*p++ = tmp[--n];
	return p;
}

/* inet_ntop() without stdio: RFC 5952 text (longest run of two or more zero
 * groups as "::", the first on a tie; lowercase hex). */
static const char *fmt_addr(const struct dv_addr *a, char buf[static DV_ADDR_STRLEN])
{
	char *p = buf, *end = buf + DV_ADDR_STRLEN - 1;
	int best = -1, best_len = 0;
	uint16_t g[8];

	if (a->family == AF_INET) {
		for (int i = 0; i < 4; i++) {
			if (i)
				p = put_str(p, end, ".");
			p = put_uint(p, end, a->bytes[i], 10);
		}
		*p = 0;
		return buf;
	}
	for (int i = 0; i < 8; i++)
		g[i] = (uint16_t)(a->bytes[2 * i] << 8 | a->bytes[2 * i + 1]);
	for (int i = 0; i < 8;) {
		int j = i;

		while (j < 8 && g[j] == 0)
			j++;
		if (j - i > best_len && j - i >= 2) {
			best = i;
			best_len = j - i;
		}
		i = j > i ? j : i + 1;
	}
	for (int i = 0; i < 8; i++) {
		if (i == best) {
			p = put_str(p, end, "::");
			i += best_len - 1;
			continue;
		}
		if (i && i != best + best_len)
			p = put_str(p, end, ":");
		p = put_uint(p, end, g[i], 16);
	}
	*p = 0;
	return buf;
}

/*
 * One line on stderr: "HEAD OP[ ADDR[:PORT]]SEP WHAT[: DETAIL[: DETAIL2]]".
 * One writev(), so that lines of several processes sharing stderr do not
 * interleave. errno is kept.
 */
static void put_line(const char *head, const char *op, const struct dv_addr *a, uint16_t port, const char *sep,
		     const char *what, const char *detail, const char *detail2)
{
	char abuf[DV_ADDR_STRLEN], pbuf[8];
	struct iovec iov[14];
	int n = 0, saved = errno;

#define PUT(s)                                                                                                         \
	do {                                                                                                           \
		iov[n].iov_base = (void *)(s);                                                                         \
		iov[n].iov_len = strlen(s);                                                                            \
		n++;                                                                                                   \
	} while (0)
	PUT(head);
	PUT(op);
	if (a) {
		bool brackets = port && a->family == AF_INET6;

		PUT(brackets ? " [" : " ");
		PUT(fmt_addr(a, abuf));
		if (port) {
			char *p = put_str(pbuf, pbuf + sizeof(pbuf) - 1, brackets ? "]:" : ":");

			*put_uint(p, pbuf + sizeof(pbuf) - 1, port, 10) = 0;
			PUT(pbuf);
		}
	}
	PUT(sep);
	PUT(what);
	if (detail && *detail) {
		PUT(": ");
		PUT(detail);
	}
	if (detail2 && *detail2) {
		PUT(": ");
		PUT(detail2);
	}
	PUT("\n");
#undef PUT
	(void)!writev(STDERR_FILENO, iov, n);
	errno = saved;
}

/* With DVIPA_DEBUG: "dvipa-preload: OP ADDR: WHAT[: DETAIL[: DETAIL2]]". */
static void debug_line2(const struct config *c, const char *op, const struct dv_addr *a, const char *what,
			const char *detail, const char *detail2)
{
	if (c->debug)
		put_line("dvipa-preload: ", op, a, 0, ": ", what, detail, detail2);
}

static void debug_line(const struct config *c, const char *op, const struct dv_addr *a, const char *what,
		       const char *detail)
{
	debug_line2(c, op, a, what, detail, NULL);
}

/*
 * The shim could not get a VIPA. The program sees only EADDRNOTAVAIL, which
 * says nothing of why, so unless DVIPA_QUIET one line says it:
 * "dvipa: bind 10.1.1.5:80 failed: WHAT[: DETAIL...]". With DVIPA_DEBUG,
 * the debug line too.
 */
static void say_failed(const struct config *c, const char *op, const struct dv_addr *a, uint16_t port, const char *what,
		       const char *detail, const char *detail2)
{
	debug_line2(c, op, a, what, detail, detail2);
	if (!c->quiet)
		put_line("dvipa: ", op, a, port, " failed: ", what, detail, detail2);
}

/* dvipad said no: "dvipa: bind 10.1.1.5:80 refused: ITS REASON". */
static void say_refused(const struct config *c, const char *op, const struct dv_addr *a, uint16_t port,
			const struct dv_reply *rep)
{
	debug_line(c, op, a, dv_result_brief(rep->result), rep->reason);
	if (!c->quiet)
		put_line("dvipa: ", op, a, port,
			 " refused: ", *rep->reason ? rep->reason : dv_result_brief(rep->result), NULL, NULL);
}

/* strerror() may translate, hence allocate; the English description from
 * glibc's table does not. */
static const char *errtext(int e)
{
	const char *s = strerrordesc_np(e);

	return s ? s : "unknown error";
}

/* ---- talking to dvipad ---- */

struct request {
	uint8_t buf[REQ_MAX];
	size_t len;
};

static void req_init(struct request *q, uint16_t type, uint32_t seq)
{
	struct dv_msg_hdr h = {.magic = DV_PROTO_MAGIC, .version = DV_PROTO_VERSION, .type = type, .seq = seq};

	memcpy(q->buf, &h, sizeof(h));
	q->len = sizeof(h);
}

/* The callers below put at most what REQ_MAX accounts for. */
static void req_attr(struct request *q, uint16_t type, const void *v, size_t n)
{
	struct dv_attr a = {.type = type, .len = (uint16_t)(sizeof(a) + n)};
	size_t total = ATTR_SIZE(n);

	memcpy(q->buf + q->len, &a, sizeof(a));
	memcpy(q->buf + q->len + sizeof(a), v, n);
	memset(q->buf + q->len + sizeof(a) + n, 0, total - sizeof(a) - n);
	q->len += total;
}

static void req_u32(struct request *q, uint16_t type, uint32_t v)
{
	req_attr(q, type, &v, sizeof(v));
}

static void req_addr(struct request *q, const struct dv_addr *a)
{
	uint8_t v[1 + 16];
	size_t n = dv_addr_size(a);

	v[0] = a->family;
	memcpy(v + 1, a->bytes, n);
	req_attr(q, DV_A_ADDR, v, 1 + n);
}

static void req_finish(struct request *q)
{
	uint32_t len = (uint32_t)q->len;

	memcpy(q->buf + offsetof(struct dv_msg_hdr, len), &len, sizeof(len));
}

/*
 * Read the next RESULT with seq, or EVENT about addr (when want_event), into
 * *rep. deadline_ms < 0: no limit. 0, or -ETIMEDOUT, -ECONNRESET (dvipad
 * went away), -EBADMSG (it broke the protocol); *why then says which.
 */
static int recv_reply(int fd, uint32_t seq, const struct dv_addr *addr, bool want_event, int64_t deadline_ms,
		      struct dv_reply *rep, const char **why)
{
	for (;;) {
		uint8_t buf[REPLY_BUF];
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		struct dv_msg m;
		int timeout = -1, r;
		ssize_t n;

		if (deadline_ms >= 0) {
			int64_t left = deadline_ms - dv_now_ms();

			if (left <= 0) {
				*why = "no answer from dvipad " LIMIT_TEXT;
				return -ETIMEDOUT;
			}
			timeout = left > 1000000 ? 1000000 : (int)left;
		}
		r = poll(&pfd, 1, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			continue; /* the deadline check above decides */
		if (r < 0) {
			*why = "poll on the dvipad connection failed";
			return -ECONNRESET;
		}
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		/* Closed on our request: the reason waits behind the reset. */
		if (n < 0 && errno == ECONNRESET && dv_ctl_refusal(fd, rep) >= 0)
			return 0;
		if (n <= 0) {
			*why = "dvipad closed the connection";
			return -ECONNRESET;
		}
		if ((mh.msg_flags & MSG_TRUNC) || dv_msg_parse(buf, (size_t)n, &m) < 0 ||
		    ((m.type == DV_MSG_RESULT || m.type == DV_MSG_EVENT) && dv_reply_decode(&m, rep) < 0)) {
			*why = "malformed message from dvipad";
			return -EBADMSG;
		}
		/* Seq 0: dvipad refused the connection; its reason is the answer. */
		if (m.type == DV_MSG_RESULT && (rep->seq == seq || rep->seq == 0))
			return 0;
		if (want_event && m.type == DV_MSG_EVENT && rep->has_addr && dv_addr_eq(&rep->addr, addr))
			return 0;
		/* Anything else (a future message type, an event of no
		 * interest) is not for this wait. */
	}
}

/* Send q on the non-blocking fd, waiting for room until deadline_ms. 0, or
 * -errno with *why. */
static int send_request(int fd, const struct request *q, int64_t deadline_ms, const char **why)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int64_t left;
		ssize_t n;

		n = send(fd, q->buf, q->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)q->len)
			return 0;
		if (n >= 0) {
			*why = "short write"; /* a SOCK_SEQPACKET send is whole or nothing */
			return -EIO;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			*why = errtext(errno);
			return -errno;
		}
		left = deadline_ms - dv_now_ms();
		if (left <= 0) {
			*why = "dvipad read nothing " LIMIT_TEXT;
			return -ETIMEDOUT;
		}
		(void)poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
	}
}

/*
 * Make addr usable on this host for a socket hold: ACTIVATE, or STANDBY and
 * wait for the grant; with source_use, activate it only if no other node
 * has it (DV_A_SOURCE_USE). 0, the open connection in *ret_conn (the caller
 * closes it once its socket is bound) and in *ret_source whether the range
 * is SOURCEVIPA; or -1 once the reason is said, with dvipad's refusal in
 * *ret_result (DV_R_UNREACH when there was no answer). port is the one
 * bind() asked for, for the messages.
 */
static int vipa_acquire(const struct config *c, const char *op, const struct dv_addr *addr, uint16_t port,
			bool source_use, int *ret_conn, bool *ret_source, uint32_t *ret_result)
{
	struct request q;
	struct dv_reply rep;
	const char *why = NULL;
	bool standby = c->standby_rank > 0 && !source_use, got_result = false, granted = false;
	/* One deadline for connect, send and the answer: whichever of them
	 * a stopped dvipad blocks, bind() returns in time. */
	int64_t deadline = dv_now_ms() + DV_CTL_TIMEOUT_MS;
	int fd, r;

	*ret_conn = -1;
	*ret_source = false;
	*ret_result = DV_R_UNREACH;
	if (c->socket_bad) {
		say_failed(c, op, addr, port, "DVIPA_SOCKET is too long for a socket path", NULL, NULL);
		return -1;
	}
	if (c->standby_rank < 0) {
		say_failed(c, op, addr, port, "DVIPA_STANDBY is not a rank in 1..254", NULL, NULL);
		return -1;
	}

	req_init(&q, standby ? DV_MSG_STANDBY : DV_MSG_ACTIVATE, 1);
	req_addr(&q, addr);
	req_u32(&q, DV_A_KIND, DV_KIND_SOCKET);
	if (standby)
		req_u32(&q, DV_A_RANK, (uint32_t)c->standby_rank);
	if (source_use)
		req_u32(&q, DV_A_SOURCE_USE, 1);
	req_finish(&q);

	/* The real connect(): ours would look at the socket for nothing. */
	fd = dv_ctl_connect(&c->sock, c->sock_len, deadline, real_connect());
	if (fd == -ETIMEDOUT) {
		say_failed(c, op, addr, port, "cannot reach dvipad", c->sock.sun_path,
			   "no connection accepted " LIMIT_TEXT);
		return -1;
	}
	if (fd < 0) {
		say_failed(c, op, addr, port, "cannot reach dvipad", c->sock.sun_path, errtext(-fd));
		return -1;
	}
	if (send_request(fd, &q, deadline, &why) < 0) {
		/* Refused at the door: dvipad said why before it closed. */
		if (dv_ctl_refusal(fd, &rep) >= 0)
			say_refused(c, op, addr, port, &rep);
		else
			say_failed(c, op, addr, port, "cannot send to dvipad", why, NULL);
		goto fail;
	}

	/* A standby waits for its RESULT, then (PENDING) for the GRANTED
	 * event; events are accepted all along, in case one overtakes. */
	for (;;) {
		r = recv_reply(fd, 1, addr, standby, got_result ? -1 : deadline, &rep, &why);
		if (r < 0) {
			say_failed(c, op, addr, port, why, NULL, NULL);
			goto fail;
		}
		if (rep.source)
			*ret_source = true;
		if (rep.type == DV_MSG_EVENT) {
			if (rep.event == EVENT_GRANTED)
				granted = true;
			else if (rep.event == EVENT_LOST) {
				say_failed(c, op, addr, port, "standby registration lost", rep.reason, NULL);
				goto fail;
			}
		} else if (rep.result == DV_R_OK) {
			debug_line(c, op, addr, standby ? "granted at once" : "activated", NULL);
			break;
		} else if (rep.result == DV_R_PENDING && standby) {
			debug_line(c, op, addr, "standby registered, waiting", rep.reason);
			got_result = true;
		} else {
			say_refused(c, op, addr, port, &rep);
			*ret_result = rep.result;
			goto fail;
		}
		if (got_result && granted) {
			debug_line(c, op, addr, "granted", rep.reason);
			break;
		}
	}
	*ret_conn = fd;
	return 0;

fail:
	close(fd);
	return -1;
}

/* Whether a failed bind() of sa is worth asking dvipad about. */
static bool vipa_candidate(const struct config *c, int err, const struct sockaddr *sa, socklen_t len,
			   struct dv_addr *ret, uint16_t *ret_port)
{
	/* EADDRNOTAVAIL: not local. EADDRINUSE with DVIPA_STANDBY: local,
	 * because the primary instance holds it on this very host. */
	if (err != EADDRNOTAVAIL && !(err == EADDRINUSE && c->standby_rank != 0))
		return false;
	if (dv_addr_from_sockaddr(sa, len, ret, ret_port) < 0)
		return false;
	return !addr_is_special(ret);
}

/*
 * The bind() of a granted claim on a (conn is still open): 0 with the
 * address noted for DVIPA_SOURCE, or -1 with errno once the reason is said.
 */
static int bind_granted(const struct config *c, const char *op, int fd, const struct sockaddr *sa, socklen_t len,
			const struct dv_addr *a, uint16_t port, int conn, bool source)
{
	int r = real_bind()(fd, sa, len), e = errno;

	/* Closed only now: the socket hold is kept by sock_diag once the
	 * socket is bound, and the connection must not end before that. */
	close(conn);
	if (r < 0) {
		say_failed(c, op, a, port, "bind after activation failed", errtext(e), NULL);
		errno = e;
		return -1;
	}
	slot_store(&last_vipa, a);
	if (source)
		slot_store(&range_source_vipa, a);
	return 0;
}

/*
 * bind() after a failure with err: ask dvipad, then bind once more. The
 * result of that bind, or the original failure. After a success errno is
 * left as the first attempt set it (POSIX leaves it unspecified; the fast
 * path does not pay for saving it).
 */
static int bind_slow(const struct config *c, const char *op, int fd, const struct sockaddr *sa, socklen_t len, int err)
{
	struct dv_addr a;
	uint16_t port = 0;
	uint32_t res;
	bool source;
	int conn;

	if (!vipa_candidate(c, err, sa, len, &a, &port)) {
		errno = err;
		return -1;
	}
	if (vipa_acquire(c, op, &a, port, false, &conn, &source, &res) < 0) {
		errno = err;
		return -1;
	}
	if (bind_granted(c, op, fd, sa, len, &a, port, conn, source) < 0)
		return -1;
	errno = err;
	return 0;
}

/*
 * bind() to a, an address inside a range: claim it, then bind. A refusal
 * fails the bind without touching the socket: EADDRINUSE when another
 * program or node holds a (UNIQUE, or another host answers for it),
 * EADDRNOTAVAIL for the rest, as for an address that is not local. Without an answer from dvipad (not running) or when
 * the address is in no range after all (the table was old), the bind goes on as without the shim.
 */
static int bind_claim(const struct config *c, int fd, const struct sockaddr *sa, socklen_t len, const struct dv_addr *a,
		      uint16_t port)
{
	uint32_t res;
	bool source;
	int conn;

	if (vipa_acquire(c, "bind", a, port, false, &conn, &source, &res) == 0)
		return bind_granted(c, "bind", fd, sa, len, a, port, conn, source);
	switch (res) {
	case DV_R_UNREACH:
	case DV_R_NORANGE:
		return real_bind()(fd, sa, len);
	case DV_R_HELD:
	case DV_R_INUSE:
		errno = EADDRINUSE;
		return -1;
	default:
		errno = EADDRNOTAVAIL;
		return -1;
	}
}

/* ---- source VIPA ---- */

static bool sockaddr_unbound(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		return s4->sin_port == 0 && s4->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		return s6->sin6_port == 0 && IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
	}
	return false;
}

/*
 * SYSPLEXPORTS: a distributed VIPA's outbound connections use this node's
 * slice of its ports, so that the distributor sends the replies here. 0
 * (also where any port will do), or -1 once the reason is said: dvipad
 * refused, or gave no answer (the port could then be one whose replies go
 * to another node).
 */
static int source_slice(const struct config *c, int fd, const struct dv_addr *src)
{
	struct dv_reply rep;
	uint32_t range;
	int one = 1, r;

	if (c->socket_bad) {
		say_failed(c, "source", src, 0, "DVIPA_SOCKET is too long for a socket path", NULL, NULL);
		return -1;
	}
	r = dv_ctl_source_ports(&c->sock, c->sock_len, src, dv_now_ms() + DV_CTL_TIMEOUT_MS, real_connect(), &rep);
	if (r < 0) {
		say_failed(c, "source", src, 0, "cannot ask dvipad for this node's ports of it", c->sock.sun_path,
			   errtext(-r));
		return -1;
	}
	if (rep.result != DV_R_OK) {
		say_refused(c, "source", src, 0, &rep);
		return -1;
	}
	if (!rep.port_lo)
		return 0;
	range = (uint32_t)rep.port_hi << 16 | rep.port_lo;
	if (setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof(range)) < 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0) {
		say_failed(c, "source", src, 0, "cannot use this node's ports of the VIPA", errtext(errno), NULL);
		return -1;
	}
	debug_line(c, "source", src, "ports of this node (SYSPLEXPORTS)", rep.reason);
	return 0;
}

/*
 * DVIPA_SOURCE: before fd, an unbound IPv4/IPv6 socket, talks to dst, bind
 * it to the source VIPA, port 0. Anything that does not fit (families,
 * loopback destination, no VIPA activated yet for "auto") leaves the socket
 * alone. The VIPA is used where it is local; else dvipad activates it if
 * no node has it, and never takes it from another node (DV_A_SOURCE_USE).
 * 0, or -1 with errno EADDRNOTAVAIL once the reason is said: the program
 * asked to send from the VIPA, so it never silently sends from the host's
 * address instead. errno is kept on success.
 */
static int source_bind(int fd, const struct sockaddr *dst, socklen_t dstlen)
{
	static atomic_bool bad_said;
	struct config tmp;
	const struct config *c = get_config(&tmp);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct dv_addr src, to;
	uint32_t res;
	bool source;
	int saved = errno, conn;

	if (!dst)
		goto out;
	if (c->source == SOURCE_BAD && !atomic_exchange(&bad_said, true))
		debug_line(c, "source", NULL, "DVIPA_SOURCE is neither an address nor \"auto\"; ignored", NULL);
	if (dv_addr_from_sockaddr(dst, dstlen, &to, NULL) < 0 || addr_is_special(&to))
		goto out;
	if (c->source == SOURCE_ADDR)
		src = c->source_addr;
	else if (c->source == SOURCE_AUTO ? !slot_load(&last_vipa, &src) : !slot_load(&range_source_vipa, &src))
		goto out; /* nothing activated (in a SOURCEVIPA range) yet */
	if (src.family != to.family)
		goto out; /* an IPv4 VIPA for IPv6 peers, or the reverse */
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 || !sockaddr_unbound(&ss))
		goto out;
	if (ss.ss_family == AF_INET && dst->sa_family != AF_INET)
		goto out; /* connect() will refuse it anyway */

	if (ss.ss_family == AF_INET) {
		struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_addr = src.v4};

		if (src.family != AF_INET)
			goto out;
		memcpy(&ss, &s4, sizeof(s4));
		sl = sizeof(s4);
	} else {
		struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};

		if (src.family == AF_INET) {
			/* An IPv4 peer of an IPv6 socket: v4-mapped source. */
			s6.sin6_addr.s6_addr[10] = 0xff;
			s6.sin6_addr.s6_addr[11] = 0xff;
			memcpy(&s6.sin6_addr.s6_addr[12], src.bytes, 4);
		} else {
			s6.sin6_addr = src.v6;
		}
		memcpy(&ss, &s6, sizeof(s6));
		sl = sizeof(s6);
	}

	/* The real connect(): ours would look at the probe socket. */
	if (dv_addr_is_local(&src, real_connect())) {
		if (source_slice(c, fd, &src) < 0)
			goto fail;
		if (real_bind()(fd, (struct sockaddr *)&ss, sl) < 0) {
			say_failed(c, "source", &src, 0, "cannot bind to the source VIPA", errtext(errno), NULL);
			goto fail;
		}
		goto out;
	}
	/* A standby instance takes its source VIPA only once it is local:
	 * activating it would take it from the active instance, and a
	 * standby wait would block the program's connect(). */
	if (c->standby_rank != 0) {
		say_failed(c, "source", &src, 0, "not active on this host",
			   "a standby sends from its VIPA once it is granted", NULL);
		goto fail;
	}
	if (vipa_acquire(c, "source", &src, 0, true, &conn, &source, &res) < 0 ||
	    bind_granted(c, "source", fd, (struct sockaddr *)&ss, sl, &src, 0, conn, source) < 0)
		goto fail;
out:
	errno = saved;
	return 0;
fail:
	errno = EADDRNOTAVAIL;
	return -1;
}

/* ---- the interposed functions ---- */

/* A bind() to a specific address: a claim if a is in a range. Out of
 * line, so that the fast path of bind() needs no stack frame for the
 * configuration copy. */
static __attribute__((noinline)) int bind_specific(int fd, const struct sockaddr *sa, socklen_t len,
						   const struct dv_addr *a, uint16_t port)
{
	struct config tmp;
	const struct config *c = get_config(&tmp);
	int r;

	if (in_range(c, a))
		return bind_claim(c, fd, sa, len, a, port);
	r = real_bind()(fd, sa, len);
	if (r == 0 || (errno != EADDRNOTAVAIL && errno != EADDRINUSE))
		return r;
	return bind_slow(c, "bind", fd, sa, len, errno);
}

/*
 * A bind() while DVIPA_LISTEN is set: a TCP socket bound to a pair of the
 * set gets SO_REUSEPORT for it (and loses it again if the bind fails);
 * everything else goes on as without the set.
 */
static __attribute__((noinline)) int bind_listen(int fd, const struct sockaddr *sa, socklen_t len,
						 const struct dv_addr *a, uint16_t port)
{
	static atomic_bool bad_said;
	struct config tmp;
	const struct config *c = get_config(&tmp);
	bool specific = !addr_is_special(a);
	int type = 0, rp = 0, one = 1, zero = 0, i, r, e;
	socklen_t tl = sizeof(type), rl = sizeof(rp);

	/* Malformed: the program runs as without it, its second bind of a
	 * port fails with EADDRINUSE, and this line says why. */
	if (c->listen_err[0] && !c->quiet && !atomic_exchange(&bad_said, true))
		put_line("dvipa: ", "DVIPA_LISTEN", NULL, 0, " ignored: ", c->listen_err, NULL, NULL);
	i = dv_listen_set_find(&c->listen, a, port);
	/* Not a TCP socket of the set, or the program chose SO_REUSEPORT
	 * itself and with it whom it shares the port with. */
	if (i < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
	    getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &rp, &rl) < 0 || rp)
		return specific ? bind_specific(fd, sa, len, a, port) : real_bind()(fd, sa, len);
	if (dv_listen_taken(&c->listen.pair[i]) > 0) {
		say_failed(c, "bind", a, port, "a TCP socket listens there already",
			   "DVIPA_LISTEN shares a port only among the pairs of its set", NULL);
		errno = EADDRINUSE;
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		e = errno;
		say_failed(c, "bind", a, port, "cannot set SO_REUSEPORT for DVIPA_LISTEN", errtext(e), NULL);
		errno = e;
		return -1;
	}
	debug_line(c, "listen", a, "SO_REUSEPORT set: a pair of DVIPA_LISTEN", NULL);
	r = specific ? bind_specific(fd, sa, len, a, port) : real_bind()(fd, sa, len);
	if (r < 0) {
		e = errno;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &zero, sizeof(zero));
		errno = e;
	}
	return r;
}

DV_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	const struct sockaddr *sa = SA_PTR(addr);
	struct dv_addr a;
	uint16_t port;

	/* Wildcard, loopback, multicast, and anything but IPv4/IPv6: never
	 * a VIPA, so not worth a look at the table or a question on failure;
	 * a wildcard may be a pair of DVIPA_LISTEN, though. */
	if (dv_addr_from_sockaddr(sa, len, &a, &port) == 0) {
		if (listen_wanted())
			return bind_listen(fd, sa, len, &a, port);
		if (!addr_is_special(&a))
			return bind_specific(fd, sa, len, &a, port);
	}
	return real_bind()(fd, sa, len);
}

DV_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	const struct sockaddr *sa = SA_PTR(addr);

	if (source_wanted() && source_bind(fd, sa, len) < 0)
		return -1;
	return real_connect()(fd, sa, len);
}

DV_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	const struct sockaddr *sa = SA_PTR(addr);

	if (sa && source_wanted() && source_bind(fd, sa, len) < 0)
		return -1;
	return real_sendto()(fd, buf, n, flags, sa, len);
}

DV_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (msg && msg->msg_name && source_wanted() && source_bind(fd, msg->msg_name, msg->msg_namelen) < 0)
		return -1;
	return real_sendmsg()(fd, msg, flags);
}
