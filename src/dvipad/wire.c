/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cluster wire format and its byte-level helpers (wire.h).
 *
 * An event on the wire:
 *
 *   u32 magic "DVEV"  u16 version  u16 type  u32 length (whole message)
 *   u32 node  u64 time_ms
 *   body, by type:
 *     NODE_CONFIG  str name, u32 n, n x range, u32 n, n x define
 *     CLAIM        u64 client, u32 seq, addr, u8 kind, u32 uid
 *     RELEASE      (as CLAIM)
 *     STANDBY      u64 client, u32 seq, addr, u32 rank, u8 kind, u32 uid
 *     CLIENT_GONE  u64 client
 *     ADDR_STATE   addr, u32 flags (DV_AS_*, the ports' weights in bits 8..23)
 *     MEMBERSHIP   u32 n, n x u32 node
 *     QUORUM       u8 quorate
 *     MOVE         u64 client, u32 seq, addr, u32 to (node, not 0), u32 uid
 *     DEFINE_STATE u64 client, u32 seq, addr, u32 target (not 0), u8 active
 *     NODE_ADMIN   u64 client, u32 seq, u32 target (not 0), u8 joined
 *     DIST_PINS    addr, u16 port, u32 n, n x (addr, u16 port)
 *     QUIESCE      u64 client, u32 seq, addr, u32 target (not 0), u16 port
 *                  (0: all), u8 on
 *     MOVING       addr, u32 n, n x (addr, u16 port)
 *
 *   addr    u8 family (4 or 6), 4 or 16 bytes
 *   str     u16 size (including the NUL), the bytes, NUL
 *   range   addr, u8 prefix length, u8 policy, u8 flags (deleted,
 *           bindwatch, sourcevipa), u32 line
 *   define  addr, u8 plen, u8 rank, u8 moveable, u16 trackport, u32 line
 *
 * The encoding is canonical: every value has one representation and the
 * decoder refuses every other (unknown bits, booleans other than 0 and 1,
 * trailing bytes), so that decoding and encoding again gives the same bytes.
 * Enumerations keep their numbers from engine.h and conf.h on the wire;
 * changing one of them is a new DV_WIRE_VERSION.
 *
 * A STANDBY's rank travels unchecked: the engine answers a bad rank with a
 * reply to the requesting client, which a refusal here would swallow.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proto.h"
#include "wire.h"

#define DV_WIRE_MAGIC 0x56455644u /* "DVEV" */
#define HEADER_SIZE 12
#define COMMON_SIZE 12 /* node, time_ms */

#define RANGE_DELETED 0x01
#define RANGE_BINDWATCH 0x02
#define RANGE_SOURCEVIPA 0x04
#define RANGE_FLAGS (RANGE_DELETED | RANGE_BINDWATCH | RANGE_SOURCEVIPA)
/* In the kind byte of a claim: source use only. */
#define CLAIM_SOURCE_USE 0x80

#define AS_FLAGS DV_AS_ALL

_Static_assert(DV_EV_NODE_CONFIG == 1 && DV_EV_QUORUM == 8 && DV_EV_MOVE == 9 && DV_EV_NODE_ADMIN == 11,
	       "event types are wire numbers");
_Static_assert(DV_KIND_API == 1 && DV_KIND_OPERATOR == 2 && DV_KIND_SOCKET == 3, "hold kinds are wire numbers");
_Static_assert(DV_POLICY_NONDISRUPTIVE == 0 && DV_POLICY_UNIQUE == 2, "policies are wire numbers");
_Static_assert(DV_MOVE_IMMEDIATE == 0 && DV_MOVE_NONE == 2, "moveable values are wire numbers");
_Static_assert(DV_RANK_DEFINE <= UINT8_MAX, "a define's rank fits a byte");
_Static_assert(sizeof(uid_t) == 4, "uids are 32 bits on the wire");

/* ---- writing ---- */

static bool w_reserve(struct dv_wbuf *w, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (w->err)
		return false;
	if (n > SIZE_MAX - w->len || (w->max && w->len + n > w->max)) {
		w->err = -EMSGSIZE;
		return false;
	}
	if (w->len + n <= w->cap)
		return true;
	cap = w->cap ? w->cap : 256;
	while (cap < w->len + n)
		cap = cap > SIZE_MAX / 2 ? w->len + n : cap * 2;
	p = realloc(w->data, cap);
	if (!p) {
		w->err = -ENOMEM;
		return false;
	}
	w->data = p;
	w->cap = cap;
	return true;
}

void dv_w_bytes(struct dv_wbuf *w, const void *p, size_t n)
{
	if (!n || !w_reserve(w, n))
		return;
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void w_le(struct dv_wbuf *w, uint64_t v, size_t n)
{
	if (!w_reserve(w, n))
		return;
	put_le(w->data + w->len, v, n);
	w->len += n;
}

void dv_w_u8(struct dv_wbuf *w, uint8_t v)
{
	w_le(w, v, 1);
}

void dv_w_u16(struct dv_wbuf *w, uint16_t v)
{
	w_le(w, v, 2);
}

void dv_w_u32(struct dv_wbuf *w, uint32_t v)
{
	w_le(w, v, 4);
}

void dv_w_u64(struct dv_wbuf *w, uint64_t v)
{
	w_le(w, v, 8);
}

void dv_w_patch_u32(struct dv_wbuf *w, size_t off, uint32_t v)
{
	if (!w->err && off <= w->len && w->len - off >= 4)
		put_le(w->data + off, v, 4);
}

void dv_w_patch_u64(struct dv_wbuf *w, size_t off, uint64_t v)
{
	if (!w->err && off <= w->len && w->len - off >= 8)
		put_le(w->data + off, v, 8);
}

static void w_fail(struct dv_wbuf *w, int err)
{
	if (!w->err)
		w->err = err;
}

void dv_w_addr(struct dv_wbuf *w, const struct dv_addr *a)
{
	if (a->family == AF_INET) {
		dv_w_u8(w, DV_WIRE_INET);
		dv_w_bytes(w, a->bytes, 4);
	} else if (a->family == AF_INET6) {
		dv_w_u8(w, DV_WIRE_INET6);
		dv_w_bytes(w, a->bytes, 16);
	} else {
		w_fail(w, -EINVAL);
	}
}

void dv_w_str(struct dv_wbuf *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n >= max || n >= UINT16_MAX) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_u16(w, (uint16_t)(n + 1));
	dv_w_bytes(w, s, n);
	dv_w_u8(w, 0);
}

void dv_w_range(struct dv_wbuf *w, const struct dv_conf_range *r)
{
	struct dv_prefix p;

	if (dv_prefix_make(&r->prefix.addr, r->prefix.len, &p) < 0 || (unsigned)r->policy > DV_POLICY_UNIQUE) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_addr(w, &r->prefix.addr);
	dv_w_u8(w, r->prefix.len);
	dv_w_u8(w, (uint8_t)r->policy);
	dv_w_u8(w, (uint8_t)((r->deleted ? RANGE_DELETED : 0) | (r->bindwatch ? RANGE_BINDWATCH : 0) |
			     (r->sourcevipa ? RANGE_SOURCEVIPA : 0)));
	dv_w_u32(w, r->line);
}

void dv_w_define(struct dv_wbuf *w, const struct dv_conf_define *d)
{
	if ((d->addr.family != AF_INET && d->addr.family != AF_INET6) || d->plen > dv_addr_maxlen(&d->addr) ||
	    d->rank < 1 || d->rank > DV_RANK_DEFINE || (unsigned)d->moveable > DV_MOVE_NONE) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_addr(w, &d->addr);
	dv_w_u8(w, d->plen);
	dv_w_u8(w, (uint8_t)d->rank);
	dv_w_u8(w, (uint8_t)d->moveable);
	dv_w_u16(w, d->trackport);
	dv_w_u32(w, d->line);
}

/* ---- reading ---- */

static const uint8_t *r_take(struct dv_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || r->off > r->len || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	p = r->data + r->off;
	r->off += n;
	return p;
}

static uint64_t r_le(struct dv_rbuf *r, size_t n)
{
	const uint8_t *p = r_take(r, n);
	uint64_t v = 0;

	if (!p)
		return 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t dv_r_u8(struct dv_rbuf *r)
{
	return (uint8_t)r_le(r, 1);
}

uint16_t dv_r_u16(struct dv_rbuf *r)
{
	return (uint16_t)r_le(r, 2);
}

uint32_t dv_r_u32(struct dv_rbuf *r)
{
	return (uint32_t)r_le(r, 4);
}

uint64_t dv_r_u64(struct dv_rbuf *r)
{
	return r_le(r, 8);
}

bool dv_r_bool(struct dv_rbuf *r)
{
	uint8_t v = dv_r_u8(r);

	if (v > 1)
		r->bad = true;
	return v == 1;
}

size_t dv_r_count(struct dv_rbuf *r, size_t max, size_t min_size)
{
	uint32_t n = dv_r_u32(r);

	if (r->bad)
		return 0;
	if (n > max || (min_size && n > (r->len - r->off) / min_size)) {
		r->bad = true;
		return 0;
	}
	return n;
}

void dv_r_addr(struct dv_rbuf *r, struct dv_addr *ret)
{
	uint8_t fam = dv_r_u8(r);
	const uint8_t *p;

	*ret = (struct dv_addr){0};
	if (fam == DV_WIRE_INET) {
		p = r_take(r, 4);
		if (p) {
			ret->family = AF_INET;
			memcpy(ret->bytes, p, 4);
		}
	} else if (fam == DV_WIRE_INET6) {
		p = r_take(r, 16);
		if (p) {
			ret->family = AF_INET6;
			memcpy(ret->bytes, p, 16);
		}
	} else {
		r->bad = true;
	}
}

void dv_r_str(struct dv_rbuf *r, char *buf, size_t size)
{
	uint16_t n = dv_r_u16(r);
	const uint8_t *p;

	buf[0] = '\0';
	if (r->bad)
		return;
	if (n < 1 || n > size) {
		r->bad = true;
		return;
	}
	p = r_take(r, n);
	if (!p)
		return;
	if (p[n - 1] != 0 || memchr(p, 0, n - 1u)) {
		r->bad = true;
		return;
	}
	memcpy(buf, p, n);
}

void dv_r_range(struct dv_rbuf *r, struct dv_conf_range *ret)
{
	struct dv_addr a;
	uint8_t len, policy, flags;

	*ret = (struct dv_conf_range){0};
	dv_r_addr(r, &a);
	len = dv_r_u8(r);
	policy = dv_r_u8(r);
	flags = dv_r_u8(r);
	ret->line = dv_r_u32(r);
	if (r->bad)
		return;
	if (dv_prefix_make(&a, len, &ret->prefix) < 0 || policy > DV_POLICY_UNIQUE || (flags & ~RANGE_FLAGS)) {
		r->bad = true;
		return;
	}
	ret->policy = (enum dv_range_policy)policy;
	ret->deleted = flags & RANGE_DELETED;
	ret->bindwatch = flags & RANGE_BINDWATCH;
	ret->sourcevipa = flags & RANGE_SOURCEVIPA;
}

void dv_r_define(struct dv_rbuf *r, struct dv_conf_define *ret)
{
	uint8_t rank, moveable;

	*ret = (struct dv_conf_define){0};
	dv_r_addr(r, &ret->addr);
	ret->plen = dv_r_u8(r);
	rank = dv_r_u8(r);
	moveable = dv_r_u8(r);
	ret->trackport = dv_r_u16(r);
	ret->line = dv_r_u32(r);
	if (r->bad)
		return;
	if (ret->plen > dv_addr_maxlen(&ret->addr) || rank < 1 || moveable > DV_MOVE_NONE) {
		r->bad = true;
		return;
	}
	ret->rank = rank;
	ret->moveable = (enum dv_moveable)moveable;
}

void dv_r_end(struct dv_rbuf *r)
{
	if (r->off != r->len)
		r->bad = true;
}

uint32_t dv_crc32(const void *p, size_t n)
{
	/* Four bits at a time: a table small enough to write out, fast enough
	 * for snapshots of some megabytes. */
	static const uint32_t t[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
		0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};
	const uint8_t *b = p;
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= b[i];
		c = (c >> 4) ^ t[c & 15];
		c = (c >> 4) ^ t[c & 15];
	}
	return c ^ 0xffffffffu;
}

/* ---- events ---- */

/* MEMBERSHIP and QUORUM describe the cluster, not one node's request. */
static bool needs_node(enum dv_event_type t)
{
	return t != DV_EV_MEMBERSHIP && t != DV_EV_QUORUM;
}

static bool kind_ok(unsigned k)
{
	return k == DV_KIND_API || k == DV_KIND_OPERATOR || k == DV_KIND_SOCKET;
}

static void w_bool(struct dv_wbuf *w, bool v)
{
	dv_w_u8(w, v ? 1 : 0);
}

/* The requester and the address most operator and client events start with. */
static void w_request(struct dv_wbuf *w, uint64_t client, uint32_t seq, const struct dv_addr *addr)
{
	dv_w_u64(w, client);
	dv_w_u32(w, seq);
	dv_w_addr(w, addr);
}

/* Each encode_*() checks what its decoder would refuse before it writes. */
static void encode_node_config(struct dv_wbuf *w, const struct dv_event *ev)
{
	const struct dv_node_conf *nc = &ev->node_config;

	if (nc->n_ranges > DV_CONF_MAX_STATEMENTS || nc->n_defines > DV_CONF_MAX_STATEMENTS ||
	    (nc->n_ranges && !nc->ranges) || (nc->n_defines && !nc->defines)) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_str(w, nc->name, sizeof(nc->name));
	dv_w_bytes(w, nc->mac, sizeof(nc->mac));
	dv_w_u32(w, (uint32_t)nc->n_ranges);
	for (size_t i = 0; i < nc->n_ranges; i++)
		dv_w_range(w, &nc->ranges[i]);
	dv_w_u32(w, (uint32_t)nc->n_defines);
	for (size_t i = 0; i < nc->n_defines; i++)
		dv_w_define(w, &nc->defines[i]);
}

/* claim and release share their layout */
static void encode_claim(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (!kind_ok(ev->claim.kind)) {
		w_fail(w, -EINVAL);
		return;
	}
	w_request(w, ev->claim.client, ev->claim.seq, &ev->claim.addr);
	/* A source-use claim sets the kind byte's high bit: the layout and
	 * DV_WIRE_VERSION stay; a node without it rejects the event as
	 * malformed rather than moving the address. */
	dv_w_u8(w,
		(uint8_t)(ev->claim.kind | (ev->type == DV_EV_CLAIM && ev->claim.source_use ? CLAIM_SOURCE_USE : 0)));
	dv_w_u32(w, ev->claim.uid);
}

static void encode_standby(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (!kind_ok(ev->standby.kind)) {
		w_fail(w, -EINVAL);
		return;
	}
	w_request(w, ev->standby.client, ev->standby.seq, &ev->standby.addr);
	dv_w_u32(w, ev->standby.rank);
	dv_w_u8(w, (uint8_t)ev->standby.kind);
	dv_w_u32(w, ev->standby.uid);
}

static void encode_client_gone(struct dv_wbuf *w, const struct dv_event *ev)
{
	dv_w_u64(w, ev->client_gone.client);
}

static void encode_addr_state(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->addr_state.flags & ~(unsigned)AS_FLAGS) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_addr(w, &ev->addr_state.addr);
	dv_w_u32(w, ev->addr_state.flags);
}

static void encode_membership(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->membership.n > DV_ENGINE_MAX_NODES || (ev->membership.n && !ev->membership.nodes)) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_u32(w, (uint32_t)ev->membership.n);
	for (size_t i = 0; i < ev->membership.n; i++) {
		if (ev->membership.nodes[i] == 0)
			w_fail(w, -EINVAL);
		dv_w_u32(w, ev->membership.nodes[i]);
	}
}

/* n x (addr, u16 port), each of a's family. */
static void encode_pins(struct dv_wbuf *w, const struct dv_addr *a, size_t n, const struct dv_peer_pin *pins)
{
	dv_w_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		if (pins[i].addr.family != a->family)
			w_fail(w, -EINVAL);
		dv_w_addr(w, &pins[i].addr);
		dv_w_u16(w, pins[i].port);
	}
}

static void encode_dist_pins(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->dist_pins.port == 0 || ev->dist_pins.n > DV_DIST_PINS_MAX || (ev->dist_pins.n && !ev->dist_pins.pins)) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_addr(w, &ev->dist_pins.addr);
	dv_w_u16(w, ev->dist_pins.port);
	encode_pins(w, &ev->dist_pins.addr, ev->dist_pins.n, ev->dist_pins.pins);
}

static void encode_moving(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->moving.n > DV_DIST_PINS_MAX || (ev->moving.n && !ev->moving.pins)) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_addr(w, &ev->moving.addr);
	encode_pins(w, &ev->moving.addr, ev->moving.n, ev->moving.pins);
}

static void encode_quorum(struct dv_wbuf *w, const struct dv_event *ev)
{
	w_bool(w, ev->quorum.quorate);
}

static void encode_move(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->move.to == 0) {
		w_fail(w, -EINVAL);
		return;
	}
	w_request(w, ev->move.client, ev->move.seq, &ev->move.addr);
	dv_w_u32(w, ev->move.to);
	dv_w_u32(w, ev->move.uid);
}

static void encode_define_state(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->define_state.target == 0) {
		w_fail(w, -EINVAL);
		return;
	}
	w_request(w, ev->define_state.client, ev->define_state.seq, &ev->define_state.addr);
	dv_w_u32(w, ev->define_state.target);
	w_bool(w, ev->define_state.active);
}

static void encode_node_admin(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->node_admin.target == 0) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_u64(w, ev->node_admin.client);
	dv_w_u32(w, ev->node_admin.seq);
	dv_w_u32(w, ev->node_admin.target);
	w_bool(w, ev->node_admin.joined);
}

static void r_request(struct dv_rbuf *r, uint64_t *ret_client, uint32_t *ret_seq, struct dv_addr *ret_addr)
{
	*ret_client = dv_r_u64(r);
	*ret_seq = dv_r_u32(r);
	dv_r_addr(r, ret_addr);
}

static enum dv_kind r_kind(struct dv_rbuf *r)
{
	uint8_t kind = dv_r_u8(r);

	if (!kind_ok(kind))
		r->bad = true;
	return (enum dv_kind)kind;
}

/* A node id, which is never 0. */
static dv_nodeid_t r_nodeid(struct dv_rbuf *r)
{
	dv_nodeid_t id = dv_r_u32(r);

	if (id == 0)
		r->bad = true;
	return id;
}

/*
 * Each decode_*() reads its body into ev and marks r bad for what is
 * malformed, or returns -errno at once. What it allocates for ev's pointers
 * it leaves in *ret_storage, for the caller's single free().
 */
static int decode_node_config(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	struct dv_node_conf *nc = &ev->node_config;
	struct dv_conf_range *ranges;
	struct dv_conf_define *defines;
	size_t nr, nd, off;
	uint8_t *mem;

	_Static_assert(sizeof(struct dv_conf_range) % _Alignof(struct dv_conf_define) == 0,
		       "defines follow ranges in one block");

	dv_r_str(r, nc->name, sizeof(nc->name));
	for (size_t i = 0; i < sizeof(nc->mac); i++)
		nc->mac[i] = dv_r_u8(r);
	nr = dv_r_count(r, DV_CONF_MAX_STATEMENTS, DV_WIRE_RANGE_MIN);
	if (r->bad)
		return -EBADMSG;
	/* Both arrays in one block, for the caller's single free(); the
	 * defines' count is known only once the ranges are read, so the block
	 * is sized for the most defines the bytes left can hold. */
	nd = (r->len - r->off - nr * DV_WIRE_RANGE_MIN) / DV_WIRE_DEFINE_MIN;
	if (nd > DV_CONF_MAX_STATEMENTS)
		nd = DV_CONF_MAX_STATEMENTS;
	off = nr * sizeof(*ranges);
	mem = calloc(1, off + nd * sizeof(*defines) + 1);
	if (!mem)
		return -ENOMEM;
	ranges = (struct dv_conf_range *)(void *)mem;
	defines = (struct dv_conf_define *)(void *)(mem + off);
	for (size_t i = 0; i < nr && !r->bad; i++)
		dv_r_range(r, &ranges[i]);
	nc->n_defines = dv_r_count(r, nd, DV_WIRE_DEFINE_MIN);
	for (size_t i = 0; i < nc->n_defines && !r->bad; i++)
		dv_r_define(r, &defines[i]);
	if (r->bad) {
		free(mem);
		return -EBADMSG;
	}
	nc->n_ranges = nr;
	nc->ranges = nr ? ranges : NULL;
	nc->defines = nc->n_defines ? defines : NULL;
	*ret_storage = mem;
	return 0;
}

static int decode_claim(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	uint8_t k;

	r_request(r, &ev->claim.client, &ev->claim.seq, &ev->claim.addr);
	k = dv_r_u8(r);
	if (ev->type == DV_EV_CLAIM && (k & CLAIM_SOURCE_USE)) {
		ev->claim.source_use = true;
		k &= (uint8_t)~CLAIM_SOURCE_USE;
	}
	if (!kind_ok(k))
		r->bad = true;
	ev->claim.kind = (enum dv_kind)k;
	ev->claim.uid = dv_r_u32(r);
	return 0;
}

static int decode_standby(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	r_request(r, &ev->standby.client, &ev->standby.seq, &ev->standby.addr);
	ev->standby.rank = dv_r_u32(r);
	ev->standby.kind = r_kind(r);
	ev->standby.uid = dv_r_u32(r);
	return 0;
}

static int decode_client_gone(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	ev->client_gone.client = dv_r_u64(r);
	return 0;
}

static int decode_addr_state(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	dv_r_addr(r, &ev->addr_state.addr);
	ev->addr_state.flags = dv_r_u32(r);
	if (ev->addr_state.flags & ~(unsigned)AS_FLAGS)
		r->bad = true;
	return 0;
}

static int decode_membership(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	size_t n = dv_r_count(r, DV_ENGINE_MAX_NODES, 4);
	dv_nodeid_t *nodes;

	if (r->bad)
		return -EBADMSG;
	nodes = calloc(n ? n : 1, sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		nodes[i] = r_nodeid(r);
	ev->membership.n = n;
	ev->membership.nodes = n ? nodes : NULL;
	*ret_storage = nodes;
	return 0;
}

/* What encode_pins wrote: *ret_n pins of a's family in *ret (freed by
 * the caller, also when r->bad). */
static int decode_pins(struct dv_rbuf *r, const struct dv_addr *a, struct dv_peer_pin **ret, size_t *ret_n)
{
	size_t n = dv_r_count(r, DV_DIST_PINS_MAX, DV_WIRE_ADDR_MIN + 2);
	struct dv_peer_pin *pins;

	*ret = NULL;
	*ret_n = 0;
	if (r->bad)
		return -EBADMSG;
	pins = calloc(n ? n : 1, sizeof(*pins));
	if (!pins)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		dv_r_addr(r, &pins[i].addr);
		pins[i].port = dv_r_u16(r);
		if (pins[i].addr.family != a->family)
			r->bad = true;
	}
	*ret = pins;
	*ret_n = n;
	return 0;
}

static int decode_dist_pins(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	struct dv_peer_pin *pins;
	size_t n;
	int e;

	dv_r_addr(r, &ev->dist_pins.addr);
	ev->dist_pins.port = dv_r_u16(r);
	e = decode_pins(r, &ev->dist_pins.addr, &pins, &n);
	if (e < 0)
		return e;
	if (ev->dist_pins.port == 0)
		r->bad = true;
	ev->dist_pins.n = n;
	ev->dist_pins.pins = n ? pins : NULL;
	*ret_storage = pins;
	return 0;
}

static int decode_moving(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	struct dv_peer_pin *pins;
	size_t n;
	int e;

	dv_r_addr(r, &ev->moving.addr);
	e = decode_pins(r, &ev->moving.addr, &pins, &n);
	if (e < 0)
		return e;
	ev->moving.n = n;
	ev->moving.pins = n ? pins : NULL;
	*ret_storage = pins;
	return 0;
}

static void encode_port_slice(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->port_slice.blocks > DV_SLICE_POOL_BLOCKS) {
		w_fail(w, -EINVAL);
		return;
	}
	dv_w_addr(w, &ev->port_slice.addr);
	dv_w_u16(w, (uint16_t)ev->port_slice.blocks);
}

static int decode_port_slice(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	dv_r_addr(r, &ev->port_slice.addr);
	ev->port_slice.blocks = dv_r_u16(r);
	if (ev->port_slice.blocks > DV_SLICE_POOL_BLOCKS)
		r->bad = true;
	return 0;
}

static int decode_quorum(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	ev->quorum.quorate = dv_r_bool(r);
	return 0;
}

static int decode_move(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	r_request(r, &ev->move.client, &ev->move.seq, &ev->move.addr);
	ev->move.to = r_nodeid(r);
	ev->move.uid = dv_r_u32(r);
	return 0;
}

static int decode_define_state(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	r_request(r, &ev->define_state.client, &ev->define_state.seq, &ev->define_state.addr);
	ev->define_state.target = r_nodeid(r);
	ev->define_state.active = dv_r_bool(r);
	return 0;
}

static int decode_node_admin(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	ev->node_admin.client = dv_r_u64(r);
	ev->node_admin.seq = dv_r_u32(r);
	ev->node_admin.target = r_nodeid(r);
	ev->node_admin.joined = dv_r_bool(r);
	return 0;
}

static void encode_quiesce(struct dv_wbuf *w, const struct dv_event *ev)
{
	if (ev->quiesce.target == 0) {
		w_fail(w, -EINVAL);
		return;
	}
	w_request(w, ev->quiesce.client, ev->quiesce.seq, &ev->quiesce.addr);
	dv_w_u32(w, ev->quiesce.target);
	dv_w_u16(w, ev->quiesce.port);
	w_bool(w, ev->quiesce.on);
}

static int decode_quiesce(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage)
{
	r_request(r, &ev->quiesce.client, &ev->quiesce.seq, &ev->quiesce.addr);
	ev->quiesce.target = r_nodeid(r);
	ev->quiesce.port = dv_r_u16(r);
	ev->quiesce.on = dv_r_bool(r);
	return 0;
}

/* One body layout per event type, in both directions. */
static const struct event_codec {
	void (*encode)(struct dv_wbuf *w, const struct dv_event *ev);
	int (*decode)(struct dv_rbuf *r, struct dv_event *ev, void **ret_storage);
} codecs[DV_EV_LAST + 1] = {
	[DV_EV_NODE_CONFIG] = {encode_node_config, decode_node_config},
	[DV_EV_CLAIM] = {encode_claim, decode_claim},
	[DV_EV_RELEASE] = {encode_claim, decode_claim},
	[DV_EV_STANDBY] = {encode_standby, decode_standby},
	[DV_EV_CLIENT_GONE] = {encode_client_gone, decode_client_gone},
	[DV_EV_ADDR_STATE] = {encode_addr_state, decode_addr_state},
	[DV_EV_MEMBERSHIP] = {encode_membership, decode_membership},
	[DV_EV_QUORUM] = {encode_quorum, decode_quorum},
	[DV_EV_MOVE] = {encode_move, decode_move},
	[DV_EV_DEFINE_STATE] = {encode_define_state, decode_define_state},
	[DV_EV_NODE_ADMIN] = {encode_node_admin, decode_node_admin},
	[DV_EV_DIST_PINS] = {encode_dist_pins, decode_dist_pins},
	[DV_EV_PORT_SLICE] = {encode_port_slice, decode_port_slice},
	[DV_EV_QUIESCE] = {encode_quiesce, decode_quiesce},
	[DV_EV_MOVING] = {encode_moving, decode_moving},
};

int dv_event_encode(const struct dv_event *ev, uint8_t **ret, size_t *ret_len)
{
	struct dv_wbuf w = {.max = DV_WIRE_MAX};

	if (!ev || !ret || !ret_len)
		return -EINVAL;
	if ((unsigned)ev->type < DV_EV_NODE_CONFIG || (unsigned)ev->type > DV_EV_LAST ||
	    (needs_node(ev->type) && ev->node == 0))
		return -EINVAL;

	dv_w_u32(&w, DV_WIRE_MAGIC);
	dv_w_u16(&w, DV_WIRE_VERSION);
	dv_w_u16(&w, (uint16_t)ev->type);
	dv_w_u32(&w, 0); /* length, below */
	dv_w_u32(&w, ev->node);
	dv_w_u64(&w, ev->time_ms);
	codecs[ev->type].encode(&w, ev);
	dv_w_patch_u32(&w, 8, (uint32_t)w.len);
	if (w.err) {
		free(w.data);
		return w.err;
	}
	*ret = w.data;
	*ret_len = w.len;
	return 0;
}

/* The header and the common part; -EBADMSG unless they fit r's length. */
static int decode_header(struct dv_rbuf *r, struct dv_event *ev)
{
	uint16_t type;

	if (dv_r_u32(r) != DV_WIRE_MAGIC || dv_r_u16(r) != DV_WIRE_VERSION)
		return -EBADMSG;
	type = dv_r_u16(r);
	if (dv_r_u32(r) != r->len || type < DV_EV_NODE_CONFIG || type > DV_EV_LAST)
		return -EBADMSG;
	ev->type = (enum dv_event_type)type;
	ev->node = dv_r_u32(r);
	ev->time_ms = dv_r_u64(r);
	if (needs_node(ev->type) && ev->node == 0)
		return -EBADMSG;
	return 0;
}

int dv_event_decode(const uint8_t *buf, size_t len, struct dv_event *ret, void **ret_storage)
{
	struct dv_rbuf r = {.data = buf, .len = len};
	struct dv_event ev = {0};
	void *storage = NULL;
	int err;

	if (!ret || !ret_storage)
		return -EINVAL;
	*ret = (struct dv_event){0};
	*ret_storage = NULL;
	if (!buf || len < HEADER_SIZE + COMMON_SIZE || len > DV_WIRE_MAX)
		return -EBADMSG;
	err = decode_header(&r, &ev);
	if (err < 0)
		return err;
	err = codecs[ev.type].decode(&r, &ev, &storage);
	if (err < 0)
		return err;
	dv_r_end(&r);
	if (r.bad) {
		free(storage);
		return -EBADMSG;
	}
	*ret = ev;
	*ret_storage = storage;
	return 0;
}
