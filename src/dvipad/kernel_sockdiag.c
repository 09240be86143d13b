/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which local addresses have sockets, from sock_diag (NETLINK_SOCK_DIAG).
 *
 * Two netlink sockets. "req" carries dumps (SOCK_DIAG_BY_FAMILY with
 * inet_diag_req_v2), one at a time, seq and port id checked, each with an
 * inet_diag bytecode filter so that the kernel returns only the sockets
 * whose source lies in the addresses or prefixes we ask about. "mon" is
 * subscribed to the four destroy groups: the kernel tells us when a TCP or
 * UDP socket is freed, with its addresses.
 *
 * Watched addresses (socket holds): a destroy notification whose source is
 * a watched address marks it dirty; a 0-ms timer then re-checks every dirty
 * address with one filtered dump, so that a burst of destroys (a process
 * exiting with many sockets) costs one dump. The kernel announces no new
 * binds, so the bind poll below also looks for sockets on watched addresses
 * that are currently unbound.
 *
 * Bind watch: while prefixes are set (or a watched address is unbound), a
 * timer dumps listening TCP and bound UDP sockets inside them every
 * poll_ms. Those dumps are cheap: the kernel walks only the listening and
 * UDP hash tables, never the established table, and the bytecode drops
 * every socket outside the prefixes before it is copied to us.
 *
 * A socket counts when its source is the address in any TCP state but
 * SYN_RECV (request sockets, covered by their listener), TIME_WAIT and
 * CLOSE, or when it is a UDP socket bound or connected from it. IPv4
 * addresses bound through AF_INET6 sockets (::ffff:a.b.c.d) live only in
 * the AF_INET6 tables, so an IPv4 address needs an AF_INET and an AF_INET6
 * dump; the kernel's hostcond matches an AF_INET condition against such
 * v4-mapped sockets itself.
 */
#include "kernel.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <libmnl/libmnl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addrset.h"
#include "cleanup.h"
#include "clock.h"

#define WATCH_MAX 65536 /* watched addresses */
#define PREFIX_MAX 4096 /* bind-watch prefixes */
#define SEEN_MAX 65536	/* addresses inside prefixes with sockets, tracked for "once per appearance" */
#define BC_MAX 8192	/* bytecode per request; larger filters fall back to userspace filtering */
#define RX_SIZE 65536	/* larger than any dump skb the kernel builds */
#define TX_SIZE (BC_MAX + 256)
#define MON_RX_SIZE 16384 /* one destroy notification, with every extension */
#define MON_BUF (8 << 20)
#define MON_BURST 256		/* datagrams per wake-up, so the loop is not starved */
#define RETRY_USEC (100 * 1000) /* after a failed re-check */
/* Re-checks spend CPU time from a credit that grows at 1/8 of the wall
 * time, up to a burst: under destroy churn they use at most ~1/8 of a CPU,
 * but a socket closed after a quiet spell is re-checked at once. */
#define RECHECK_SHARE 8
#define RECHECK_BURST_USEC 20000
#define RECHECK_COST_MIN_USEC 125 /* charged at least: ~1,000 re-checks a second under churn */

/* TCP states as the kernel numbers them (include/net/tcp_states.h). */
enum {
	ST_ESTABLISHED = 1,
	ST_SYN_SENT,
	ST_SYN_RECV,
	ST_FIN_WAIT1,
	ST_FIN_WAIT2,
	ST_TIME_WAIT,
	ST_CLOSE,
	ST_CLOSE_WAIT,
	ST_LAST_ACK,
	ST_LISTEN,
	ST_CLOSING,
};

#define _unused_ __attribute__((unused))

#define SF(x) (1u << (x))
/* A socket that holds its source address. */
#define TCP_HELD                                                                                                       \
	(SF(ST_ESTABLISHED) | SF(ST_SYN_SENT) | SF(ST_FIN_WAIT1) | SF(ST_FIN_WAIT2) | SF(ST_CLOSE_WAIT) |              \
	 SF(ST_LAST_ACK) | SF(ST_LISTEN) | SF(ST_CLOSING))
/* Bind watch: only the listening table, not the (large) established one. */
#define TCP_BOUND SF(ST_LISTEN)
/* UDP: bound (CLOSE) or connected (ESTABLISHED). */
#define UDP_ALL (SF(ST_ESTABLISHED) | SF(ST_CLOSE))

/* A bytecode filter for one dump family. len: > 0 bytecode, 0 nothing of
 * interest in this family (skip the dump), -1 unfiltered (too large). */
struct filter {
	int len;
	uint8_t bc[BC_MAX];
};

struct dv_sockdiag {
	sd_event *ev;
	const struct dv_sockdiag_ops *ops;
	void *ud;
	struct dv_nl req, mon;
	sd_event_source *mon_src, *recheck_src, *poll_src;
	uint64_t poll_usec;
	int64_t recheck_credit; /* CPU usec re-checks may spend now; < 0: owed */
	uint64_t credit_at;	/* usec, CLOCK_MONOTONIC, of its last update */

	struct dv_addrset watched;
	struct dv_addrset known;    /* watched, first state reported */
	struct dv_addrset bound;    /* known and bound */
	struct dv_addrset anchored; /* bound, with a TCP listener at the last check */
	struct dv_addrset visible;  /* bound, with a listener or UDP socket (what the poll sees) at the last check */
	struct dv_addrset dirty;    /* watched, to re-check */
	struct dv_addrset seen;	    /* inside prefixes, with a socket at the last poll */

	struct dv_prefix *prefixes; /* sorted, disjoint */
	size_t n_prefixes;
	bool poll_stale; /* poll_f no longer matches prefixes + unbound */
	struct filter poll_f[2], tmp_f[2];

	/* The connection index (kernel_connidx.c), if in use; the addresses
	 * that had connections when it started (it never counted them), until
	 * a walk finds none there; how many looks it answered, and walked. */
	struct dv_connidx *idx;
	struct dv_addrset unsure;
	uint64_t looks_index, looks_walk;

	char *tx;
	bool failing; /* background checks fail; told once through ops->failed */
	unsigned dispatching;
	bool dead; /* freed from changed() */
};

struct event {
	struct dv_addr a;
	bool bound;
	bool watch; /* from a watched address, else a bind-watch appearance */
};

/* Reports of one pass, allocated for the worst case before any state
 * changes, so that no transition goes unreported for want of memory. */
struct events {
	struct event *v;
	size_t n, cap;
};

/* What one series of dumps looks for and collects. */
struct scan {
	bool (*match)(const struct scan *sc, const struct dv_addr *a);
	const struct dv_sockdiag *s;  /* for match_poll */
	const struct dv_addrset *set; /* for match_set */
	const struct dv_addr *one;    /* for match_one */
	const struct dv_prefix *pfx;  /* for match_prefixes */
	size_t n_pfx;
	uint8_t *ports;			/* if given: every local port seen, a bitmap; no match */
	struct dv_listen_queue *queues; /* if given: listeners of these ports summed; match */
	size_t n_queues;
	/* if given: the addresses of `set` a new connection could open on
	 * (a listener bound to one, or a wildcard: open_any4, open_any6,
	 * added at the end; a connect from one under way), apart from found */
	struct dv_addrset *open;
	bool open_any4, open_any6;
	struct dv_addrset *found;  /* matching sources, if given, up to found_max */
	struct dv_addrset *listen; /* those with a TCP listener, if given */
	size_t found_max;
	uint32_t *inodes; /* if given: inodes of matching sockets, up to inodes_max */
	size_t inodes_max, n_inodes;
	struct dv_bound_socket *firsts; /* if given: one socket per address in found, up to firsts_max */
	size_t firsts_max, n_firsts;
	/* if given: the peers of established connections from local port
	 * peer_port, up to peers_max (more: peers_more) */
	struct dv_peer *peers;
	size_t peers_max, n_peers;
	uint16_t peer_port;
	bool peers_more;
	/* if given: the ids of matching sockets (family in ids_family), up
	 * to ids_max (more: ids_more), for SOCK_DESTROY */
	struct inet_diag_sockid *ids;
	uint8_t *ids_family;
	size_t ids_max, n_ids;
	bool ids_more;
	size_t hits;
};

static const uint8_t families[2] = {AF_INET, AF_INET6};

/* AF_INET or AF_INET6, a v4-mapped IPv6 address turned into IPv4. */
static int addr_norm(const struct dv_addr *a, struct dv_addr *ret)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

	if (!a)
		return -EINVAL;
	if (a->family == AF_INET) {
		*ret = (struct dv_addr){.family = AF_INET, .v4 = a->v4};
		return 0;
	}
	if (a->family != AF_INET6)
		return -EINVAL;
	sin6.sin6_addr = a->v6;
	return dv_addr_from_sockaddr((const struct sockaddr *)&sin6, sizeof(sin6), ret, NULL);
}

static int addrset_copy(struct dv_addrset *dst, const struct dv_addrset *src)
{
	const struct dv_addr *a;

	for (size_t i = 0; dv_addrset_next(src, &i, &a);)
		if (dv_addrset_add(dst, a) < 0)
			return -ENOMEM;
	return 0;
}

static bool prefix_match(const struct dv_sockdiag *s, const struct dv_addr *a)
{
	size_t lo = 0, hi = s->n_prefixes;

	/* Disjoint and sorted: only the last prefix starting at or before a
	 * can contain it. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (dv_addr_cmp(&s->prefixes[mid].addr, a) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && dv_prefix_contains(&s->prefixes[lo - 1], a);
}

static bool is_unbound(const struct dv_sockdiag *s, const struct dv_addr *a)
{
	return dv_addrset_has(&s->known, a) && !dv_addrset_has(&s->bound, a);
}

static size_t n_unbound(const struct dv_sockdiag *s)
{
	return s->known.n - s->bound.n;
}

/* ---------------- bytecode ---------------- */

/*
 * An OR of source conditions, laid out as the kernel's audit wants it
 * (every op reachable along the "yes" chain, every jump a multiple of 4):
 *
 *	C1 J1 C2 J2 ... Cn
 *
 * Ci true falls through to Ji, a JMP (always false) to the end: accept.
 * Ci false skips Ji to C(i+1); Cn false jumps 4 past the end: reject.
 *
 * An AF_INET dump only needs the IPv4 conditions; an AF_INET6 dump needs
 * both, the IPv4 ones matching v4-mapped sockets. Returns the length, 0 if
 * no condition applies to the family, -E2BIG if larger than cap.
 */
static int bc_build(uint8_t *buf, size_t cap, uint8_t family, const struct dv_prefix *p, size_t n)
{
	size_t total = 0, off = 0, m = 0;

	for (size_t i = 0; i < n; i++) {
		if (family == AF_INET && p[i].addr.family != AF_INET)
			continue;
		total += sizeof(struct inet_diag_bc_op) + sizeof(struct inet_diag_hostcond) + dv_addr_size(&p[i].addr);
		if (m++)
			total += sizeof(struct inet_diag_bc_op);
		if (total > cap)
			return -E2BIG;
	}
	if (!m)
		return 0;

	for (size_t i = 0; i < n; i++) {
		struct inet_diag_hostcond hc = {.family = p[i].addr.family, .prefix_len = p[i].len, .port = -1};
		size_t alen = dv_addr_size(&p[i].addr);
		size_t cs = sizeof(struct inet_diag_bc_op) + sizeof(hc) + alen;
		struct inet_diag_bc_op op = {.code = INET_DIAG_BC_S_COND, .yes = (uint8_t)cs, .no = (uint16_t)(cs + 4)};

		if (family == AF_INET && p[i].addr.family != AF_INET)
			continue;
		if (off) {
			struct inet_diag_bc_op jmp = {
				.code = INET_DIAG_BC_JMP, .yes = 4, .no = (uint16_t)(total - off)};

			memcpy(buf + off, &jmp, sizeof(jmp));
			off += sizeof(jmp);
		}
		memcpy(buf + off, &op, sizeof(op));
		memcpy(buf + off + sizeof(op), &hc, sizeof(hc));
		memcpy(buf + off + sizeof(op) + sizeof(hc), p[i].addr.bytes, alen);
		off += cs;
	}
	return (int)off;
}

/* Filters for both dump families over the given conditions. */
static void filters_build(struct filter f[2], const struct dv_prefix *p, size_t n)
{
	for (size_t i = 0; i < 2; i++) {
		int r = bc_build(f[i].bc, sizeof(f[i].bc), families[i], p, n);

		f[i].len = r == -E2BIG ? -1 : r;
	}
}

/* ---------------- netlink ---------------- */

/* A dump that fails midway leaves the kernel in the middle of it (a new
 * one would get EBUSY): the request socket is replaced, lazily. */
static int req_open(struct dv_sockdiag *s)
{
	return dv_nl_open(&s->req, NETLINK_SOCK_DIAG, RX_SIZE, 0);
}

static int mon_open(struct dv_sockdiag *s)
{
	static const int groups[] = {SKNLGRP_INET_TCP_DESTROY, SKNLGRP_INET_UDP_DESTROY, SKNLGRP_INET6_TCP_DESTROY,
				     SKNLGRP_INET6_UDP_DESTROY};
	int r;

	/* A process exiting with thousands of sockets sends thousands of
	 * notifications at once; an overrun costs a full re-check. */
	r = dv_nl_open(&s->mon, NETLINK_SOCK_DIAG, MON_RX_SIZE, MON_BUF);
	if (r < 0)
		return r;
	return dv_nl_join(&s->mon, groups, sizeof(groups) / sizeof(groups[0]));
}

static int diag_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(attr);
	enum mnl_attr_data_type t;

	switch (type) {
	case INET_DIAG_PROTOCOL:
	case INET_DIAG_SHUTDOWN:
	case INET_DIAG_TOS:
	case INET_DIAG_TCLASS:
	case INET_DIAG_SKV6ONLY:
		t = MNL_TYPE_U8;
		break;
	case INET_DIAG_MARK:
	case INET_DIAG_CLASS_ID:
		t = MNL_TYPE_U32;
		break;
	case INET_DIAG_CGROUP_ID:
		t = MNL_TYPE_U64;
		break;
	default:
		/* Framing already checked by mnl_attr_parse; contents unused. */
		return MNL_CB_OK;
	}
	if (mnl_attr_validate(attr, t) < 0)
		return MNL_CB_ERROR;
	if (type == INET_DIAG_PROTOCOL)
		tb[0] = attr;
	return MNL_CB_OK;
}

struct diag_info {
	struct dv_addr src; /* v4-mapped turned into IPv4 */
	struct dv_addr dst; /* the peer, likewise */
	uint8_t family;	    /* of the socket */
	uint8_t state;
	uint8_t timer;
	uint8_t proto; /* from INET_DIAG_PROTOCOL, 0 if absent */
	uint16_t sport;
	uint16_t dport;
	uint32_t inode;
	uint32_t uid;
	uint32_t rqueue, wqueue;    /* a listener: its accept queue, its backlog */
	struct inet_diag_sockid id; /* as the kernel sent it (cookie included) */
};

/* -EAFNOSUPPORT for families we do not handle, -EBADMSG for malformed. */
static int parse_diag(const struct nlmsghdr *nlh, struct diag_info *ret)
{
	const struct nlattr *tb[1] = {0};
	const struct inet_diag_msg *m;
	struct diag_info info = {0};

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*m)))
		return -EBADMSG;
	m = mnl_nlmsg_get_payload(nlh);
	if (mnl_attr_parse(nlh, sizeof(*m), diag_attr_cb, tb) != MNL_CB_OK)
		return -EBADMSG;
	info.family = m->idiag_family;
	if (info.family == AF_INET) {
		info.src.family = AF_INET;
		memcpy(&info.src.v4, m->id.idiag_src, 4);
		info.dst.family = AF_INET;
		memcpy(&info.dst.v4, m->id.idiag_dst, 4);
	} else if (info.family == AF_INET6) {
		struct dv_addr a = {.family = AF_INET6}, b = {.family = AF_INET6};

		memcpy(&a.v6, m->id.idiag_src, 16);
		memcpy(&b.v6, m->id.idiag_dst, 16);
		if (addr_norm(&a, &info.src) < 0 || addr_norm(&b, &info.dst) < 0)
			return -EBADMSG;
	} else {
		return -EAFNOSUPPORT;
	}
	info.state = m->idiag_state;
	info.timer = m->idiag_timer;
	info.sport = ntohs(m->id.idiag_sport);
	info.dport = ntohs(m->id.idiag_dport);
	info.proto = tb[0] ? mnl_attr_get_u8(tb[0]) : 0;
	info.inode = m->idiag_inode;
	info.uid = m->idiag_uid;
	info.rqueue = m->idiag_rqueue;
	info.wqueue = m->idiag_wqueue;
	info.id = m->id;
	*ret = info;
	return 0;
}

static bool is_wildcard(const struct dv_addr *a)
{
	static const uint8_t zero[16];

	return memcmp(a->bytes, zero, a->family == AF_INET6 ? 16 : 4) == 0;
}

/* A listener or a connect under way, for sc->open: a listener on 0.0.0.0
 * takes connections for every local IPv4 address, one on :: for every
 * address (IPv4 too, unless IPV6_V6ONLY, which sock_diag does not show). */
static int note_open(struct scan *sc, const struct diag_info *info)
{
	if (info->state == ST_LISTEN && is_wildcard(&info->src)) {
		if (info->family == AF_INET6)
			sc->open_any6 = true;
		else
			sc->open_any4 = true;
		return 0;
	}
	if (sc->match(sc, &info->src) && dv_addrset_add(sc->open, &info->src) < 0)
		return -ENOMEM;
	return 0;
}

static int scan_msg(struct scan *sc, uint8_t family, uint8_t proto, uint32_t states, const struct nlmsghdr *nlh)
{
	struct diag_info info;
	int r;

	r = parse_diag(nlh, &info);
	if (r == -EAFNOSUPPORT)
		return 0;
	if (r < 0)
		return r;
	/* The kernel filtered already; believe only what we asked for. */
	if ((family != AF_UNSPEC && info.family != family) || info.state >= 32 || !(states & SF(info.state)))
		return 0;
	/*
	 * A timewait minisock reports its substate, and an orphan that
	 * reaches FIN_WAIT2 becomes one at once (tcp_fin_timeout <= 60 s):
	 * it passes a FIN_WAIT2 filter, then turns TIME_WAIT without any
	 * notification. It holds nothing; only it has timer 3.
	 */
	if (proto == IPPROTO_TCP && info.timer == 3)
		return 0;
	if (sc->ports) {
		if (!sc->match || sc->match(sc, &info.src))
			sc->ports[info.sport / 8] |= (uint8_t)(1u << (info.sport % 8));
		return 0;
	}
	if (sc->queues) {
		for (size_t i = 0; i < sc->n_queues && sc->match(sc, &info.src); i++)
			if (sc->queues[i].port == info.sport) {
				sc->queues[i].listeners++;
				sc->queues[i].queued += info.rqueue;
				sc->queues[i].backlog += info.wqueue;
			}
		return 0;
	}
	if (sc->open && (info.state == ST_LISTEN || info.state == ST_SYN_SENT))
		return note_open(sc, &info);
	if (!sc->match(sc, &info.src))
		return 0;
	if (sc->peers) {
		if (sc->peer_port && (info.state != ST_ESTABLISHED || info.sport != sc->peer_port))
			return 0;
		if (sc->n_peers == sc->peers_max)
			sc->peers_more = true;
		else
			sc->peers[sc->n_peers++] = (struct dv_peer){.addr = info.dst, .port = info.dport};
		return 0;
	}
	sc->hits++;
	if (sc->ids) {
		if (sc->n_ids == sc->ids_max) {
			sc->ids_more = true;
		} else {
			sc->ids_family[sc->n_ids] = info.family;
			sc->ids[sc->n_ids++] = info.id;
		}
	}
	if (sc->inodes && info.inode && sc->n_inodes < sc->inodes_max)
		sc->inodes[sc->n_inodes++] = info.inode;
	if (sc->firsts && sc->n_firsts < sc->firsts_max && sc->found && sc->found->n < sc->found_max &&
	    !dv_addrset_has(sc->found, &info.src))
		sc->firsts[sc->n_firsts++] =
			(struct dv_bound_socket){.addr = info.src, .inode = info.inode, .uid = (uid_t)info.uid};
	if (sc->found && (sc->found->n < sc->found_max || dv_addrset_has(sc->found, &info.src)) &&
	    dv_addrset_add(sc->found, &info.src) < 0)
		return -ENOMEM;
	if (sc->listen && proto == IPPROTO_TCP && info.state == ST_LISTEN && dv_addrset_has(sc->found, &info.src) &&
	    dv_addrset_add(sc->listen, &info.src) < 0)
		return -ENOMEM;
	return 0;
}

struct dump_ctx {
	struct scan *sc;
	uint8_t family, proto;
	uint32_t states;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct dump_ctx *d = data;

	if (nlh->nlmsg_type != (d->family == AF_UNSPEC ? TCPDIAG_GETSOCK : SOCK_DIAG_BY_FAMILY))
		return 0;
	return scan_msg(d->sc, d->family, d->proto, d->states, nlh);
}

/*
 * One dump: family (AF_UNSPEC: both, TCP only) x proto, sockets in states,
 * with bytecode bc (NULL: unfiltered). Every reply goes through scan_msg. A dump that fails midway
 * leaves the kernel in the middle of it (a new one would get EBUSY), so
 * the request socket is replaced.
 */
static int dump(struct dv_sockdiag *s, uint8_t family, uint8_t proto, uint32_t states, const uint8_t *bc, size_t bclen,
		struct scan *sc)
{
	struct dump_ctx d = {.sc = sc, .family = family, .proto = proto, .states = states};
	struct nlmsghdr *nlh;
	int r;

	if (!s->req.sock && (r = req_open(s)) < 0)
		return r;
	if (family == AF_UNSPEC) {
		/* TCP in both families, one walk of the established table:
		 * only the older request (TCPDIAG_GETSOCK) asks for AF_UNSPEC. */
		struct inet_diag_req *req;

		if (proto != IPPROTO_TCP)
			return -EINVAL;
		nlh = dv_nl_msg(&s->req, s->tx, TCPDIAG_GETSOCK, NLM_F_DUMP);
		req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
		req->idiag_states = states;
	} else {
		struct inet_diag_req_v2 *req;

		nlh = dv_nl_msg(&s->req, s->tx, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP);
		req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
		req->sdiag_family = family;
		req->sdiag_protocol = proto;
		req->idiag_states = states;
	}
	if (bc)
		mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, bclen, bc);
	/* Every reply goes through scan_msg, to the end even after an error
	 * there: the socket stays usable. */
	r = dv_nl_request(&s->req, nlh, dump_cb, &d);
	if (!s->req.done)
		dv_nl_close(&s->req);
	return r;
}

/*
 * Dumps of proto in each family whose filter is not empty; stops after the
 * first dump with a match if stop_at_hit.
 */
static int scan_proto(struct dv_sockdiag *s, const struct filter f[2], uint8_t proto, uint32_t states, struct scan *sc,
		      bool stop_at_hit)
{
	for (size_t i = 0; i < 2; i++) {
		int r;

		if (f[i].len == 0)
			continue;
		r = dump(s, families[i], proto, states, f[i].len > 0 ? f[i].bc : NULL,
			 f[i].len > 0 ? (size_t)f[i].len : 0, sc);
		if (r < 0)
			return r;
		if (stop_at_hit && sc->hits)
			return 0;
	}
	return 0;
}

/* Every socket holding an address in the filter: TCP (but TIME_WAIT) and UDP. */
static int scan_held(struct dv_sockdiag *s, const struct filter f[2], struct scan *sc, bool stop_at_hit)
{
	int r = scan_proto(s, f, IPPROTO_TCP, TCP_HELD, sc, stop_at_hit);

	if (r < 0 || (stop_at_hit && sc->hits))
		return r;
	return scan_proto(s, f, IPPROTO_UDP, UDP_ALL, sc, stop_at_hit);
}

static bool match_set(const struct scan *sc, const struct dv_addr *a)
{
	return dv_addrset_has(sc->set, a);
}

static bool match_one(const struct scan *sc, const struct dv_addr *a)
{
	return dv_addr_eq(sc->one, a);
}

static bool match_prefixes(const struct scan *sc, const struct dv_addr *a)
{
	for (size_t i = 0; i < sc->n_pfx; i++)
		if (dv_prefix_contains(&sc->pfx[i], a))
			return true;
	return false;
}

/* The address or a wildcard: a listener on 0.0.0.0 or :: takes connections
 * for every local address (:: for IPv4 ones too, unless IPV6_V6ONLY, which
 * sock_diag does not show: counted as ready). */
static bool match_one_or_any(const struct scan *sc, const struct dv_addr *a)
{
	return dv_addr_eq(sc->one, a) || is_wildcard(a);
}

static bool match_poll(const struct scan *sc, const struct dv_addr *a)
{
	return prefix_match(sc->s, a) || is_unbound(sc->s, a);
}

/* ---------------- reporting ---------------- */

static void destroy(struct dv_sockdiag *s);

/*
 * Tell the owner, after all state is updated: changed() may call back into
 * the module (watch, unwatch, set_prefixes, bound, even free). An event
 * that an earlier callback made stale is dropped. Returns true if the
 * module was freed, then s must not be touched.
 */
static bool dispatch(struct dv_sockdiag *s, struct events *e)
{
	s->dispatching++;
	for (size_t i = 0; i < e->n && !s->dead; i++) {
		const struct event *x = &e->v[i];

		if (x->watch) {
			if (!dv_addrset_has(&s->known, &x->a) || dv_addrset_has(&s->bound, &x->a) != x->bound)
				continue;
		} else if (!prefix_match(s, &x->a) || dv_addrset_has(&s->watched, &x->a)) {
			continue;
		}
		if (s->ops && s->ops->changed)
			s->ops->changed(s->ud, &x->a, x->bound);
	}
	s->dispatching--;
	free(e->v);
	*e = (struct events){0};
	if (s->dead && !s->dispatching) {
		destroy(s);
		return true;
	}
	return false;
}

/* A re-check or poll failed (it is retried) or succeeded: tell the owner
 * on the first failure only, so that a lasting one is logged once. */
static void note_result(struct dv_sockdiag *s, int r)
{
	if (r >= 0) {
		s->failing = false;
		return;
	}
	if (s->failing)
		return;
	s->failing = true;
	if (s->ops && s->ops->failed)
		s->ops->failed(s->ud, r);
}

/* ---------------- timers ---------------- */

/* Run the bind poll while there is something to look for, at once or one
 * period from now. */
static void poll_arm(struct dv_sockdiag *s, bool at_once)
{
	bool want = s->n_prefixes || n_unbound(s);
	int enabled = SD_EVENT_OFF;
	uint64_t now;

	if (!s->poll_src)
		return;
	(void)sd_event_source_get_enabled(s->poll_src, &enabled);
	if (!want) {
		if (enabled != SD_EVENT_OFF)
			(void)sd_event_source_set_enabled(s->poll_src, SD_EVENT_OFF);
		return;
	}
	if (enabled != SD_EVENT_OFF && !at_once)
		return;
	if (sd_event_now(s->ev, CLOCK_MONOTONIC, &now) < 0)
		now = dv_mono_us();
	(void)sd_event_source_set_time(s->poll_src, at_once ? now : now + s->poll_usec);
	(void)sd_event_source_set_enabled(s->poll_src, SD_EVENT_ONESHOT);
}

/* The set of prefixes or of unbound watched addresses changed. */
static void poll_changed(struct dv_sockdiag *s, bool at_once)
{
	s->poll_stale = true;
	poll_arm(s, at_once);
}

static uint64_t thread_cpu_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The re-checks' credit now (RECHECK_SHARE). */
static void credit_update(struct dv_sockdiag *s, uint64_t now)
{
	if (now > s->credit_at) {
		uint64_t add = (now - s->credit_at) / RECHECK_SHARE;

		s->recheck_credit = add >= RECHECK_BURST_USEC ? RECHECK_BURST_USEC : s->recheck_credit + (int64_t)add;
		if (s->recheck_credit > RECHECK_BURST_USEC)
			s->recheck_credit = RECHECK_BURST_USEC;
	}
	s->credit_at = now;
}

/* Re-check dirty addresses after delay, and once the re-checks' credit is
 * no longer owed (bounded cost under churn). */
static void recheck_arm(struct dv_sockdiag *s, uint64_t delay)
{
	uint64_t now, t, cur;
	int enabled = SD_EVENT_OFF;

	if (!s->recheck_src)
		return;
	now = dv_mono_us();
	credit_update(s, now);
	t = now + delay;
	if (s->recheck_credit < 0 && t < now + (uint64_t)-s->recheck_credit * RECHECK_SHARE)
		t = now + (uint64_t)-s->recheck_credit * RECHECK_SHARE;
	(void)sd_event_source_get_enabled(s->recheck_src, &enabled);
	if (enabled != SD_EVENT_OFF && sd_event_source_get_time(s->recheck_src, &cur) >= 0 && cur <= t)
		return;
	(void)sd_event_source_set_time(s->recheck_src, t);
	(void)sd_event_source_set_enabled(s->recheck_src, SD_EVENT_ONESHOT);
}

static int mark_all_dirty(struct dv_sockdiag *s)
{
	int r = addrset_copy(&s->dirty, &s->watched);

	recheck_arm(s, 0);
	return r;
}

static int set_member(struct dv_addrset *set, const struct dv_addr *a, bool on)
{
	if (on)
		return dv_addrset_add(set, a) < 0 ? -ENOMEM : 0;
	(void)dv_addrset_del(set, a);
	return 0;
}

/* Filters over the given addresses: host conditions when they fit, else
 * unfiltered dumps judged against the set in userspace. */
static int filters_for_set(struct filter f[2], const struct dv_addrset *d)
{
	const struct dv_addr *a;
	struct dv_prefix *items;
	bool v4 = false;
	size_t n = 0;

	if (d->n <= BC_MAX / 16) {
		items = calloc(d->n ? d->n : 1, sizeof(*items));
		if (!items)
			return -ENOMEM;
		for (size_t i = 0; dv_addrset_next(d, &i, &a);)
			items[n++] = (struct dv_prefix){.addr = *a, .len = (uint8_t)dv_addr_maxlen(a)};
		filters_build(f, items, n);
		free(items);
		return 0;
	}
	for (size_t i = 0; !v4 && dv_addrset_next(d, &i, &a);)
		v4 = a->family == AF_INET;
	f[0].len = v4 ? -1 : 0;
	f[1].len = -1;
	return 0;
}

/*
 * Every socket holding an address of d, into sc (match_set over d, found),
 * and those that a listener or UDP socket holds into ret_visible.
 * Listeners and UDP first: their tables are small, and an address they
 * hold needs nothing more. Only the addresses left are looked for in TCP's
 * other states, whose dump walks the whole established hash table (shared
 * by every namespace: a millisecond or more on a large host), once for
 * both families.
 */
static int scan_set(struct dv_sockdiag *s, const struct dv_addrset *d, struct scan *sc, struct dv_addrset *ret_visible)
{
	struct dv_addrset rest = {0};
	const struct dv_addr *a;
	int r;

	r = filters_for_set(s->tmp_f, d);
	if (r >= 0)
		r = scan_proto(s, s->tmp_f, IPPROTO_TCP, SF(ST_LISTEN), sc, false);
	if (r >= 0)
		r = scan_proto(s, s->tmp_f, IPPROTO_UDP, UDP_ALL, sc, false);
	if (r >= 0)
		r = addrset_copy(ret_visible, sc->found);
	for (size_t i = 0; r >= 0 && dv_addrset_next(d, &i, &a);)
		if (!dv_addrset_has(sc->found, a) && dv_addrset_add(&rest, a) < 0)
			r = -ENOMEM;
	if (r >= 0 && rest.n) {
		/* The AF_INET6 filter has every condition: IPv4 ones match
		 * v4-mapped sockets too. */
		const struct filter *f = &s->tmp_f[1];

		sc->set = &rest;
		r = filters_for_set(s->tmp_f, &rest);
		if (r >= 0)
			r = dump(s, AF_UNSPEC, IPPROTO_TCP, TCP_HELD & ~SF(ST_LISTEN), f->len > 0 ? f->bc : NULL,
				 f->len > 0 ? (size_t)f->len : 0, sc);
		sc->set = d;
	}
	dv_addrset_clear(&rest);
	return r;
}

static int on_recheck(_unused_ sd_event_source *src, _unused_ uint64_t usec, void *userdata)
{
	struct dv_sockdiag *s = userdata;
	struct dv_addrset d = s->dirty, found = {0}, listen = {0}, visible = {0};
	struct scan sc = {.match = match_set, .set = &d, .found = &found, .listen = &listen, .found_max = SIZE_MAX};
	struct events e = {0};
	const struct dv_addr *a;
	/* Paid for in CPU time: on a loaded machine the wall time of a
	 * re-check includes the time others ran, and charging that delayed
	 * removals by hundreds of ms (bench p99). */
	uint64_t t0 = thread_cpu_us(), cost;
	int r;

	s->dirty = (struct dv_addrset){0};
	if (!d.n) {
		dv_addrset_clear(&d); /* emptied by unwatch(), still allocated */
		return 0;
	}

	/* Room for every report up front: a state change is never left
	 * unreported for want of memory. */
	e.v = calloc(d.n, sizeof(*e.v));
	e.cap = e.v ? d.n : 0;
	r = e.v ? scan_set(s, &d, &sc, &visible) : -ENOMEM;
	cost = thread_cpu_us() - t0;
	credit_update(s, dv_mono_us());
	s->recheck_credit -= (int64_t)(cost > RECHECK_COST_MIN_USEC ? cost : RECHECK_COST_MIN_USEC);

	for (size_t i = 0; dv_addrset_next(&d, &i, &a);) {
		bool b = dv_addrset_has(&found, a), was_known, was_bound;

		if (!dv_addrset_has(&s->watched, a))
			continue;
		if (r < 0) {
			(void)dv_addrset_add(&s->dirty, a);
			continue;
		}
		was_known = dv_addrset_has(&s->known, a);
		was_bound = dv_addrset_has(&s->bound, a);
		/* Keep bound a subset of known. */
		if (dv_addrset_add(&s->known, a) < 0) {
			(void)dv_addrset_add(&s->dirty, a);
			continue;
		}
		if (set_member(&s->bound, a, b) < 0) {
			if (!was_known)
				(void)dv_addrset_del(&s->known, a);
			(void)dv_addrset_add(&s->dirty, a);
			continue;
		}
		/* An optimisation only: failing to anchor costs re-checks. */
		if (set_member(&s->anchored, a, b && dv_addrset_has(&listen, a)) < 0)
			(void)dv_addrset_del(&s->anchored, a);
		if (set_member(&s->visible, a, b && dv_addrset_has(&visible, a)) < 0)
			(void)dv_addrset_del(&s->visible, a);
		if (!was_known || was_bound != b)
			e.v[e.n++] = (struct event){.a = *a, .bound = b, .watch = true};
	}
	if (s->dirty.n)
		recheck_arm(s, RETRY_USEC);
	note_result(s, r);
	dv_addrset_clear(&d);
	dv_addrset_clear(&found);
	dv_addrset_clear(&listen);
	dv_addrset_clear(&visible);
	poll_changed(s, false);
	(void)dispatch(s, &e);
	return 0;
}

/* The bind poll's filters: the prefixes and the unbound watched addresses. */
static int poll_filters(struct dv_sockdiag *s)
{
	size_t n = s->n_prefixes, m = n_unbound(s);
	const struct dv_addr *a;
	struct dv_prefix *items;

	if (m <= BC_MAX / 16) {
		items = calloc(n + m ? n + m : 1, sizeof(*items));
		if (!items)
			return -ENOMEM;
		if (n)
			memcpy(items, s->prefixes, n * sizeof(*items));
		for (size_t i = 0; dv_addrset_next(&s->known, &i, &a);)
			if (!dv_addrset_has(&s->bound, a))
				items[n++] = (struct dv_prefix){.addr = *a, .len = (uint8_t)dv_addr_maxlen(a)};
		filters_build(s->poll_f, items, n);
		free(items);
	} else {
		bool v4 = false;

		for (size_t i = 0; !v4 && i < n; i++)
			v4 = s->prefixes[i].addr.family == AF_INET;
		for (size_t i = 0; !v4 && dv_addrset_next(&s->known, &i, &a);)
			v4 = a->family == AF_INET && !dv_addrset_has(&s->bound, a);
		s->poll_f[0].len = v4 ? -1 : 0;
		s->poll_f[1].len = -1;
	}
	s->poll_stale = false;
	return 0;
}

/*
 * The kernel sends its destroy notifications from a workqueue, which on a
 * loaded host ran up to a second late (bench p99): a watched address inside
 * the prefixes whose listener or UDP socket this poll no longer sees is
 * re-checked now. The poll dumps those anyway; addresses outside the
 * prefixes, and those held by connections only, wait for the notification.
 */
static void recheck_vanished(struct dv_sockdiag *s, const struct dv_addrset *found)
{
	const struct dv_addr *a;
	bool arm = false;

	for (size_t i = 0; dv_addrset_next(&s->visible, &i, &a);)
		if (!dv_addrset_has(found, a) && prefix_match(s, a) && dv_addrset_add(&s->dirty, a) >= 0)
			arm = true;
	if (arm)
		recheck_arm(s, 0);
}

static int on_poll(_unused_ sd_event_source *src, _unused_ uint64_t usec, void *userdata)
{
	struct dv_sockdiag *s = userdata;
	struct dv_addrset found = {0}, listen = {0}, seen = {0};
	struct scan sc = {.match = match_poll, .s = s, .found = &found, .listen = &listen, .found_max = SEEN_MAX};
	struct events e = {0};
	const struct dv_addr *a;
	bool changed = false;
	int r = 0;

	if (s->poll_stale)
		r = poll_filters(s);
	if (r >= 0)
		r = scan_proto(s, s->poll_f, IPPROTO_TCP, TCP_BOUND, &sc, false);
	if (r >= 0)
		r = scan_proto(s, s->poll_f, IPPROTO_UDP, UDP_ALL, &sc, false);
	if (r >= 0 && found.n) {
		e.v = calloc(found.n, sizeof(*e.v));
		e.cap = e.v ? found.n : 0;
		if (!e.v)
			r = -ENOMEM;
	}
	for (size_t i = 0; r >= 0 && dv_addrset_next(&found, &i, &a);) {
		bool in = prefix_match(s, a);

		if (dv_addrset_has(&s->watched, a)) {
			/* unbound -> bound: the kernel sent nothing for the bind. */
			if (is_unbound(s, a) && dv_addrset_add(&s->bound, a) >= 0) {
				if (dv_addrset_has(&listen, a))
					(void)dv_addrset_add(&s->anchored, a);
				(void)dv_addrset_add(&s->visible, a);
				e.v[e.n++] = (struct event){.a = *a, .bound = true, .watch = true};
				changed = true;
			} else if (dv_addrset_has(&s->bound, a)) {
				/* Failing to remember costs a late removal. */
				(void)dv_addrset_add(&s->visible, a);
			}
		} else if (in && !dv_addrset_has(&s->seen, a)) {
			e.v[e.n++] = (struct event){.a = *a, .bound = true, .watch = false};
		}
		/* Failing to remember costs a repeated report, nothing worse. */
		if (in)
			(void)dv_addrset_add(&seen, a);
	}
	if (r >= 0) {
		dv_addrset_clear(&s->seen);
		s->seen = seen;
		if (found.n < SEEN_MAX) /* else what is missing may only be uncounted */
			recheck_vanished(s, &found);
	} else {
		dv_addrset_clear(&seen);
	}
	note_result(s, r);
	dv_addrset_clear(&found);
	dv_addrset_clear(&listen);
	if (changed)
		poll_changed(s, false);
	else
		poll_arm(s, false);
	(void)dispatch(s, &e);
	return 0;
}

static int on_monitor(_unused_ sd_event_source *src, _unused_ int fd, _unused_ uint32_t revents, void *userdata)
{
	struct dv_sockdiag *s = userdata;
	bool overrun = false, arm = false;

	for (unsigned burst = 0; burst < MON_BURST; burst++) {
		ssize_t n = dv_nl_recv(&s->mon);
		int left;

		if (n == -EINTR)
			continue;
		if (n == -ENOBUFS || n == -ENOSPC) {
			/* Notifications were lost (or cut): anything may have gone. */
			overrun = true;
			continue;
		}
		if (n < 0)
			break;
		left = (int)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)s->mon.rx; mnl_nlmsg_ok(h, left);
		     h = mnl_nlmsg_next(h, &left)) {
			struct diag_info info;

			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || parse_diag(h, &info) < 0)
				continue;
			if (!dv_addrset_has(&s->watched, &info.src))
				continue;
			/* A connection ended while a listener we saw still holds
			 * the address (a listener's own destroy has dport 0):
			 * nothing changed, and a busy server would otherwise
			 * cost a dump per closed connection. */
			if (info.proto == IPPROTO_TCP && info.dport && dv_addrset_has(&s->anchored, &info.src))
				continue;
			if (dv_addrset_add(&s->dirty, &info.src) < 0)
				overrun = true;
			else
				arm = true;
		}
	}
	if (overrun)
		(void)mark_all_dirty(s);
	else if (arm)
		recheck_arm(s, 0);
	return 0;
}

static bool match_none(_unused_ const struct scan *sc, _unused_ const struct dv_addr *a)
{
	return false;
}

static bool match_any(_unused_ const struct scan *sc, _unused_ const struct dv_addr *a)
{
	return true;
}

/* Fail at start, not on every re-check, when the kernel cannot dump TCP or
 * UDP sockets (tcp_diag / udp_diag missing): four dumps that match nothing
 * a program can bind to. */
static int probe(struct dv_sockdiag *s)
{
	/* 255.255.255.255 and ff00::1 (multicast, reserved scope). */
	struct dv_prefix none[2] = {
		{.addr = {.family = AF_INET, .bytes = {255, 255, 255, 255}}, .len = 32},
		{.addr = {.family = AF_INET6, .bytes = {0xff, [15] = 1}}, .len = 128},
	};
	struct scan sc = {.match = match_none};

	filters_build(s->tmp_f, none, 2);
	return scan_held(s, s->tmp_f, &sc, false);
}

/* ---------------- API ---------------- */

int dv_sockdiag_open(sd_event *ev, const struct dv_sockdiag_ops *ops, void *ud, struct dv_sockdiag **ret)
{
	struct dv_sockdiag *s;
	int r;

	if (!ev || !ret)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ev = sd_event_ref(ev);
	s->ops = ops;
	s->ud = ud;
	s->poll_usec = (uint64_t)DV_SOCKDIAG_POLL_MS * 1000;
	s->recheck_credit = RECHECK_BURST_USEC;
	s->credit_at = dv_mono_us();
	s->poll_stale = true;
	s->tx = malloc(TX_SIZE);
	if (!s->tx) {
		r = -ENOMEM;
		goto fail;
	}
	r = req_open(s);
	if (r < 0)
		goto fail;
	r = mon_open(s);
	if (r < 0)
		goto fail;
	r = probe(s);
	if (r < 0)
		goto fail;

	r = sd_event_add_io(ev, &s->mon_src, dv_nl_fd(&s->mon), EPOLLIN, on_monitor, s);
	if (r < 0)
		goto fail;
	/* Accuracy 1 µs: sd-event would otherwise slip these by up to 250 ms
	 * to coalesce wake-ups. */
	r = sd_event_add_time(ev, &s->recheck_src, CLOCK_MONOTONIC, 0, 1, on_recheck, s);
	if (r < 0)
		goto fail;
	r = sd_event_add_time(ev, &s->poll_src, CLOCK_MONOTONIC, 0, 1, on_poll, s);
	if (r < 0)
		goto fail;
	(void)sd_event_source_set_enabled(s->recheck_src, SD_EVENT_OFF);
	(void)sd_event_source_set_enabled(s->poll_src, SD_EVENT_OFF);
	/* The monitor's priority, not a lower one: a steady stream of
	 * notifications (a busy UDP client on a watched address) kept the
	 * re-check from running for 50+ ms (bench). on_monitor reads up to a
	 * whole burst per dispatch, so a burst still costs one dump. */
	(void)sd_event_source_set_priority(s->recheck_src, SD_EVENT_PRIORITY_NORMAL);
	(void)sd_event_source_set_description(s->mon_src, "dvipa-sockdiag-monitor");
	(void)sd_event_source_set_description(s->recheck_src, "dvipa-sockdiag-recheck");
	(void)sd_event_source_set_description(s->poll_src, "dvipa-sockdiag-poll");
	*ret = s;
	return 0;
fail:
	destroy(s);
	return r;
}

static void destroy(struct dv_sockdiag *s)
{
	sd_event_source_disable_unref(s->mon_src);
	sd_event_source_disable_unref(s->recheck_src);
	sd_event_source_disable_unref(s->poll_src);
	dv_nl_close(&s->req);
	dv_nl_close(&s->mon);
	dv_addrset_clear(&s->watched);
	dv_addrset_clear(&s->known);
	dv_addrset_clear(&s->bound);
	dv_addrset_clear(&s->anchored);
	dv_addrset_clear(&s->visible);
	dv_addrset_clear(&s->dirty);
	dv_addrset_clear(&s->seen);
	dv_addrset_clear(&s->unsure);
	dv_connidx_free(s->idx);
	free(s->prefixes);
	free(s->tx);
	sd_event_unref(s->ev);
	free(s);
}

struct dv_sockdiag *dv_sockdiag_free(struct dv_sockdiag *s)
{
	if (!s)
		return NULL;
	if (s->dispatching) {
		/* From changed(): finish once the dispatch loop unwinds. */
		s->dead = true;
		(void)sd_event_source_set_enabled(s->mon_src, SD_EVENT_OFF);
		(void)sd_event_source_set_enabled(s->recheck_src, SD_EVENT_OFF);
		(void)sd_event_source_set_enabled(s->poll_src, SD_EVENT_OFF);
		return NULL;
	}
	destroy(s);
	return NULL;
}

int dv_sockdiag_watch(struct dv_sockdiag *s, const struct dv_addr *a)
{
	struct dv_addr x;
	int r;

	if (!s || addr_norm(a, &x) < 0)
		return -EINVAL;
	if (dv_addrset_has(&s->watched, &x))
		return 0;
	if (s->watched.n >= WATCH_MAX)
		return -ENOSPC;
	r = dv_addrset_add(&s->watched, &x);
	if (r < 0)
		return r;
	r = dv_addrset_add(&s->dirty, &x);
	if (r < 0) {
		(void)dv_addrset_del(&s->watched, &x);
		return r;
	}
	recheck_arm(s, 0);
	return 0;
}

void dv_sockdiag_unwatch(struct dv_sockdiag *s, const struct dv_addr *a)
{
	struct dv_addr x;
	bool unbound;

	if (!s || addr_norm(a, &x) < 0)
		return;
	unbound = is_unbound(s, &x);
	(void)dv_addrset_del(&s->watched, &x);
	(void)dv_addrset_del(&s->known, &x);
	(void)dv_addrset_del(&s->bound, &x);
	(void)dv_addrset_del(&s->anchored, &x);
	(void)dv_addrset_del(&s->visible, &x);
	(void)dv_addrset_del(&s->dirty, &x);
	/* No longer installed: a socket still (or again) bound to it inside a
	 * watched prefix is a new appearance for bind watch. */
	(void)dv_addrset_del(&s->seen, &x);
	if (unbound)
		poll_changed(s, false);
}

int dv_sockdiag_listening_ports(struct dv_sockdiag *s, uint8_t ret[static DV_PORT_BITMAP])
{
	/* Listeners are few: an unfiltered dump of the LISTEN state is cheap. */
	static const struct filter all[2] = {{.len = -1}, {.len = -1}};
	struct scan sc = {.ports = ret};

	if (!s)
		return -EINVAL;
	memset(ret, 0, DV_PORT_BITMAP);
	return scan_proto(s, all, IPPROTO_TCP, TCP_BOUND, &sc, false);
}

int dv_sockdiag_listen_queues(struct dv_sockdiag *s, const struct dv_addr *a, struct dv_listen_queue *q, size_t n)
{
	static const struct filter all[2] = {{.len = -1}, {.len = -1}};
	struct dv_addr x;
	struct scan sc = {.match = match_one_or_any, .one = &x, .queues = q, .n_queues = n};
	int r = addr_norm(a, &x);

	if (!s || r < 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		q[i].listeners = 0, q[i].queued = q[i].backlog = 0;
	return scan_proto(s, all, IPPROTO_TCP, TCP_BOUND, &sc, false);
}

/* of's addresses normalized (addr_norm) into ret: 0 or -errno. */
static int norm_set(const struct dv_addrset *of, struct dv_addrset *ret)
{
	const struct dv_addr *a;
	int r = 0;

	for (size_t i = 0; r >= 0 && dv_addrset_next(of, &i, &a);) {
		struct dv_addr x;

		r = addr_norm(a, &x);
		if (r >= 0)
			r = dv_addrset_add(ret, &x);
	}
	return r;
}

/* One dump over the TCP sockets in states of both families, for the
 * addresses of `of`: those with a connection into busy, those a new one
 * could open on into open (either may be NULL). */
static int census(struct dv_sockdiag *s, const struct dv_addrset *of, uint32_t states, struct dv_addrset *busy,
		  struct dv_addrset *open)
{
	struct dv_addrset norm = {0};
	struct scan sc = {.match = match_set, .set = &norm, .found = busy, .found_max = SIZE_MAX, .open = open};
	const struct dv_addr *a;
	int r;

	if (!s || !of)
		return -EINVAL;
	r = norm_set(of, &norm);
	if (r >= 0 && norm.n > 0)
		r = dump(s, AF_UNSPEC, IPPROTO_TCP, states, NULL, 0, &sc);
	/* A wildcard listener: every address of its family could take one. */
	for (size_t i = 0; r >= 0 && open && (sc.open_any4 || sc.open_any6) && dv_addrset_next(&norm, &i, &a);)
		if ((sc.open_any6 || a->family == AF_INET) && dv_addrset_add(open, a) < 0)
			r = -ENOMEM;
	dv_addrset_clear(&norm);
	return r < 0 ? r : 0;
}

/* With the index: of the addresses of norm (normalized), into ret those a
 * walk must look at: a listener bound to the address itself (its
 * handshakes under way are not counted), connections counted, or no
 * answer (connections from before the index, a failure). A wildcard
 * listener does not count: its handshakes to the address are the one
 * thing a look by the index misses (dvipad(8)). */
static int need_walk(struct dv_sockdiag *s, const struct dv_addrset *norm, struct dv_addrset *ret)
{
	struct scan sc = {.match = match_set, .set = norm, .open = ret};
	const struct dv_addr *a;
	bool lost = false;
	int r = dump(s, AF_UNSPEC, IPPROTO_TCP, SF(ST_LISTEN), NULL, 0, &sc);

	for (size_t i = 0; r >= 0 && !lost && dv_addrset_next(norm, &i, &a);) {
		uint64_t n = 0;
		int c = 0;

		if (dv_addrset_has(ret, a))
			continue;
		if (dv_addrset_has(&s->unsure, a) || (c = dv_connidx_count(s->idx, a, &n)) < 0 || n > 0)
			r = dv_addrset_add(ret, a);
		else
			s->looks_index++;
		lost = c == -ENOSPC;
	}
	if (lost) {
		/* A connection went uncounted: never to be believed again;
		 * this look walks for every address. */
		s->idx = dv_connidx_free(s->idx);
		dv_addrset_clear(&s->unsure);
		if (s->ops && s->ops->index_lost)
			s->ops->index_lost(s->ud);
		for (size_t i = 0; r >= 0 && dv_addrset_next(norm, &i, &a);)
			r = dv_addrset_add(ret, a);
	}
	return r < 0 ? r : 0;
}

int dv_sockdiag_busy_set(struct dv_sockdiag *s, const struct dv_addrset *of, struct dv_addrset *ret,
			 struct dv_addrset *ret_open)
{
	/* One dump of every connection, not one per address: a dump walks the
	 * whole TCP hash table however narrow its filter, and thousands of
	 * defines polled one by one kept the loop busy for seconds.
	 * Connections, not listeners: TCP with a peer, on either side, a
	 * handshake under way included (what a move keeps). Both families in
	 * one walk of the established table (AF_UNSPEC): the old owner runs
	 * this before it gives an address up, and a walk per family was a
	 * millisecond more of every takeover (issue 15 item 5). Listeners
	 * and connects under way, for ret_open, cost the small listening
	 * table more. With the index, the walk only for the addresses it
	 * cannot answer for. */
	uint32_t states = (TCP_HELD & ~SF(ST_LISTEN) & ~SF(ST_SYN_SENT)) | SF(ST_SYN_RECV);
	struct dv_addrset norm = {0}, walk = {0};
	const struct dv_addr *a;
	int r = 0;

	if (!s || !of || !ret)
		return -EINVAL;
	if (ret_open)
		states |= SF(ST_LISTEN) | SF(ST_SYN_SENT);
	if (!s->idx) {
		s->looks_walk += of->n;
		return census(s, of, states, ret, ret_open);
	}
	if (!of->n)
		return 0;
	r = norm_set(of, &norm);
	if (r >= 0)
		r = need_walk(s, &norm, &walk);
	if (r >= 0 && walk.n) {
		s->looks_walk += walk.n;
		r = census(s, &walk, states, ret, ret_open);
	}
	/* What a walk found idle is counted from now on. */
	for (size_t i = 0; r >= 0 && s->unsure.n && dv_addrset_next(&walk, &i, &a);)
		if (!dv_addrset_has(ret, a))
			dv_addrset_del(&s->unsure, a);
	dv_addrset_clear(&walk);
	dv_addrset_clear(&norm);
	return r;
}

int dv_sockdiag_use_index(struct dv_sockdiag *s, struct dv_connidx *idx)
{
	/* The sockets opened before the index it will never count: their
	 * addresses are walked for until a walk finds them idle. */
	struct scan sc = {.match = match_any, .found = &s->unsure, .found_max = SIZE_MAX};
	uint32_t states = (TCP_HELD & ~SF(ST_LISTEN)) | SF(ST_SYN_RECV);
	int r;

	dv_connidx_free(s->idx);
	dv_addrset_clear(&s->unsure);
	s->idx = NULL;
	r = dump(s, AF_UNSPEC, IPPROTO_TCP, states, NULL, 0, &sc);
	if (r < 0) {
		dv_addrset_clear(&s->unsure);
		dv_connidx_free(idx);
		return r;
	}
	s->idx = idx;
	return 0;
}

void dv_sockdiag_looks(const struct dv_sockdiag *s, uint64_t *ret_index, uint64_t *ret_walk)
{
	*ret_index = s ? s->looks_index : 0;
	*ret_walk = s ? s->looks_walk : 0;
}

int dv_sockdiag_open_set(struct dv_sockdiag *s, const struct dv_addrset *of, struct dv_addrset *ret)
{
	/* Listeners only: the kernel walks the listening table alone. */
	if (!ret)
		return -EINVAL;
	return census(s, of, SF(ST_LISTEN), NULL, ret);
}

/* A scan of the sockets holding a alone; sc matches *x, a normalized. */
static int scan_one(struct dv_sockdiag *s, const struct dv_addr *a, struct dv_addr *x, struct scan *sc,
		    bool stop_at_hit)
{
	struct dv_prefix p;

	if (!s || addr_norm(a, x) < 0)
		return -EINVAL;
	p = (struct dv_prefix){.addr = *x, .len = (uint8_t)dv_addr_maxlen(x)};
	filters_build(s->tmp_f, &p, 1);
	return scan_held(s, s->tmp_f, sc, stop_at_hit);
}

int dv_sockdiag_peers(struct dv_sockdiag *s, const struct dv_addr *a, uint16_t port, struct dv_peer *ret, size_t max,
		      size_t *ret_n)
{
	struct dv_addr x;
	struct scan sc = {.match = match_one, .one = &x, .peers = ret, .peers_max = max, .peer_port = port};
	struct dv_prefix p;
	int r;

	if (!s || addr_norm(a, &x) < 0)
		return -EINVAL;
	p = (struct dv_prefix){.addr = x, .len = (uint8_t)dv_addr_maxlen(&x)};
	filters_build(s->tmp_f, &p, 1);
	r = scan_proto(s, s->tmp_f, IPPROTO_TCP,
		       port ? SF(ST_ESTABLISHED) : (TCP_HELD & ~SF(ST_LISTEN) & ~SF(ST_SYN_SENT)) | SF(ST_SYN_RECV),
		       &sc, false);
	if (r < 0)
		return r;
	*ret_n = sc.n_peers;
	return sc.peers_more ? -E2BIG : 0;
}

/* Connections destroyed per call: a move ends them in one go, a second
 * call ends the rest. */
#define DESTROY_MAX 4096

int dv_sockdiag_destroy_on(struct dv_sockdiag *s, const struct dv_addr *a, size_t *ret_n)
{
	_cleanup_free_ struct inet_diag_sockid *ids = calloc(DESTROY_MAX, sizeof(*ids));
	_cleanup_free_ uint8_t *fam = calloc(DESTROY_MAX, 1);
	struct dv_addr x;
	struct scan sc = {.match = match_one, .one = &x, .ids = ids, .ids_family = fam, .ids_max = DESTROY_MAX};
	struct dv_prefix p;
	size_t n = 0;
	int r, first = 0;

	*ret_n = 0;
	if (!s || addr_norm(a, &x) < 0)
		return -EINVAL;
	if (!ids || !fam)
		return -ENOMEM;
	p = (struct dv_prefix){.addr = x, .len = (uint8_t)dv_addr_maxlen(&x)};
	filters_build(s->tmp_f, &p, 1);
	/* Listeners stay: a program listening on the address serves it
	 * again when it comes back. */
	r = scan_proto(s, s->tmp_f, IPPROTO_TCP, TCP_HELD & ~SF(ST_LISTEN), &sc, false);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sc.n_ids; i++) {
		struct nlmsghdr *nlh = dv_nl_msg(&s->req, s->tx, SOCK_DESTROY, NLM_F_ACK);
		struct inet_diag_req_v2 *req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));

		req->sdiag_family = fam[i];
		req->sdiag_protocol = IPPROTO_TCP;
		req->idiag_states = ~0u;
		req->id = ids[i];
		r = dv_nl_request(&s->req, nlh, NULL, NULL);
		if (!s->req.done)
			dv_nl_close(&s->req);
		/* Gone meanwhile: what was asked for. */
		if (r == 0 || r == -ENOENT)
			n++;
		else if (!first)
			first = r;
		if (!s->req.sock && (r = req_open(s)) < 0)
			return r;
	}
	*ret_n = n;
	if (first)
		return first;
	return sc.ids_more ? -E2BIG : 0;
}

int dv_sockdiag_bound(struct dv_sockdiag *s, const struct dv_addr *a)
{
	struct dv_addr x;
	struct scan sc = {.match = match_one, .one = &x};
	bool b;
	int r;

	r = scan_one(s, a, &x, &sc, true);
	if (r < 0)
		return r;
	b = sc.hits > 0;
	/* Seen here first: let the loop report the transition. */
	if (dv_addrset_has(&s->known, &x) && dv_addrset_has(&s->bound, &x) != b && dv_addrset_add(&s->dirty, &x) >= 0)
		recheck_arm(s, 0);
	return b;
}

int dv_sockdiag_bound_inodes(struct dv_sockdiag *s, const struct dv_addr *a, uint32_t *ret, size_t max, size_t *ret_n)
{
	struct dv_addr x;
	struct scan sc = {.match = match_one, .one = &x, .inodes = ret, .inodes_max = max};
	int r;

	r = scan_one(s, a, &x, &sc, false);
	if (r < 0)
		return r;
	*ret_n = sc.n_inodes;
	return 0;
}

int dv_sockdiag_bound_in(struct dv_sockdiag *s, const struct dv_prefix *p, size_t n, struct dv_bound_socket *ret,
			 size_t max, size_t *ret_n)
{
	struct dv_addrset found = {0};
	struct scan sc = {.match = match_prefixes,
			  .pfx = p,
			  .n_pfx = n,
			  .found = &found,
			  .found_max = max,
			  .firsts = ret,
			  .firsts_max = max};
	int r;

	if (!s || (n && !p) || !ret_n)
		return -EINVAL;
	*ret_n = 0;
	if (!n)
		return 0;
	/* The prefixes as they are: the kernel's hostcond matches an IPv4
	 * condition against v4-mapped sockets too, and any socket the filter
	 * lets through is judged again by match_prefixes. */
	filters_build(s->tmp_f, p, n);
	r = scan_held(s, s->tmp_f, &sc, false);
	dv_addrset_clear(&found);
	if (r < 0)
		return r;
	*ret_n = sc.n_firsts;
	return 0;
}

static int prefix_cmp(const void *x, const void *y)
{
	const struct dv_prefix *a = x, *b = y;
	int c = dv_addr_cmp(&a->addr, &b->addr);

	return c ? c : (int)a->len - (int)b->len;
}

int dv_sockdiag_set_prefixes(struct dv_sockdiag *s, const struct dv_prefix *p, size_t n)
{
	struct dv_addrset seen = {0};
	struct dv_prefix *v = NULL;
	const struct dv_addr *a;
	size_t m = 0;

	if (!s || (n && !p))
		return -EINVAL;
	if (n > PREFIX_MAX)
		return -ENOSPC;
	if (n) {
		v = calloc(n, sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct dv_addr x;
		unsigned len = p[i].len;

		if (addr_norm(&p[i].addr, &x) < 0 || len > dv_addr_maxlen(&p[i].addr))
			goto inval;
		/* ::ffff:a.b.c.d/len is IPv4 in IPv6 terms. */
		if (x.family != p[i].addr.family) {
			if (len < 96)
				goto inval;
			len -= 96;
		}
		if (dv_prefix_make(&x, len, &v[i]) < 0)
			goto inval;
	}
	/* Drop prefixes inside others: the rest are disjoint, which lets
	 * prefix_match() binary-search and keeps the bytecode short. */
	if (n)
		qsort(v, n, sizeof(*v), prefix_cmp);
	for (size_t i = 0; i < n; i++)
		if (!m || !dv_prefix_contains(&v[m - 1], &v[i].addr))
			v[m++] = v[i];

	free(s->prefixes);
	s->prefixes = v;
	s->n_prefixes = m;
	/* Appearances already reported stay reported if still inside. */
	for (size_t i = 0; dv_addrset_next(&s->seen, &i, &a);)
		if (prefix_match(s, a))
			(void)dv_addrset_add(&seen, a);
	dv_addrset_clear(&s->seen);
	s->seen = seen;
	poll_changed(s, true);
	return 0;
inval:
	free(v);
	return -EINVAL;
}
