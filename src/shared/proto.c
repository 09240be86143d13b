/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control protocol: building and validating messages. See proto.h.
 *
 * Every multi-byte value is copied with memcpy: a datagram handed to the
 * parser (by a fuzzer, say) need not be aligned, and attribute values are
 * only 4-byte aligned, which is not enough for a u64 field.
 */
#include "proto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define ALIGN4(n) (((n) + 3u) & ~(size_t)3u)
#define ATTR_HDRLEN sizeof(struct dv_attr)
#define ATTR_VAL_MAX (UINT16_MAX - ATTR_HDRLEN)

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* ---- building ---- */

const char *dv_kind_name(uint32_t kind)
{
	switch (kind) {
	case DV_KIND_OPERATOR:
		return "operator";
	case DV_KIND_SOCKET:
		return "socket";
	default:
		return "api";
	}
}

void dv_msgb_init(struct dv_msgb *b, uint16_t type, uint32_t seq)
{
	struct dv_msg_hdr h = {
		.magic = DV_PROTO_MAGIC,
		.version = DV_PROTO_VERSION,
		.type = type,
		.len = 0,
		.seq = seq,
	};

	memcpy(b->buf, &h, sizeof(h));
	b->len = sizeof(h);
	b->overflow = false;
}

/*
 * Reserve an attribute with a value of vlen bytes, padding zeroed. NULL and
 * b->overflow set when it does not fit the message or an attribute's u16
 * length; later puts keep failing, so a message is never silently cut.
 */
static uint8_t *attr_reserve(struct dv_msgb *b, uint16_t type, size_t vlen)
{
	struct dv_attr a;
	size_t total;

	if (b->overflow || vlen > ATTR_VAL_MAX) {
		b->overflow = true;
		return NULL;
	}
	total = ALIGN4(ATTR_HDRLEN + vlen);
	if (b->len > sizeof(b->buf) || total > sizeof(b->buf) - b->len) {
		b->overflow = true;
		return NULL;
	}
	a.type = type;
	a.len = (uint16_t)(ATTR_HDRLEN + vlen);
	memcpy(b->buf + b->len, &a, sizeof(a));
	memset(b->buf + b->len + ATTR_HDRLEN + vlen, 0, total - ATTR_HDRLEN - vlen);
	b->len += total;
	return b->buf + b->len - total + ATTR_HDRLEN;
}

void dv_msgb_put_u32(struct dv_msgb *b, uint16_t type, uint32_t v)
{
	uint8_t *p = attr_reserve(b, type, sizeof(v));

	if (p)
		memcpy(p, &v, sizeof(v));
}

void dv_msgb_put_str(struct dv_msgb *b, uint16_t type, const char *s)
{
	size_t n;
	uint8_t *p;

	if (!s)
		s = "";
	n = strlen(s);
	if (type == DV_A_REASON && n > DV_REASON_MAX - 1)
		n = DV_REASON_MAX - 1;
	p = attr_reserve(b, type, n + 1);
	if (!p)
		return;
	memcpy(p, s, n);
	p[n] = 0;
}

void dv_msgb_put_addr(struct dv_msgb *b, const struct dv_addr *a)
{
	size_t n;
	uint8_t *p;

	/* An unset address is a caller bug; refuse rather than send garbage. */
	if (!a || (a->family != AF_INET && a->family != AF_INET6)) {
		b->overflow = true;
		return;
	}
	n = dv_addr_size(a);
	p = attr_reserve(b, DV_A_ADDR, 1 + n);
	if (!p)
		return;
	p[0] = a->family;
	memcpy(p + 1, a->bytes, n);
}

static uint8_t *field_reserve(struct dv_msgb *b, uint8_t ftype, const char *key, size_t vlen)
{
	size_t klen;
	uint8_t *p;

	if (!key || !*key) {
		b->overflow = true;
		return NULL;
	}
	klen = strlen(key);
	if (klen > ATTR_VAL_MAX) {
		b->overflow = true;
		return NULL;
	}
	p = attr_reserve(b, DV_A_FIELD, 1 + klen + 1 + vlen);
	if (!p)
		return NULL;
	p[0] = ftype;
	memcpy(p + 1, key, klen + 1);
	return p + 1 + klen + 1;
}

void dv_msgb_field_str(struct dv_msgb *b, const char *key, const char *v)
{
	size_t n;
	uint8_t *p;

	if (!v)
		v = "";
	n = strlen(v);
	p = field_reserve(b, DV_F_STR, key, n + 1);
	if (p)
		memcpy(p, v, n + 1);
}

void dv_msgb_field_u64(struct dv_msgb *b, const char *key, uint64_t v)
{
	uint8_t *p = field_reserve(b, DV_F_U64, key, sizeof(v));

	if (p)
		memcpy(p, &v, sizeof(v));
}

void dv_msgb_field_bool(struct dv_msgb *b, const char *key, bool v)
{
	uint8_t *p = field_reserve(b, DV_F_BOOL, key, 1);

	if (p)
		p[0] = v ? 1 : 0;
}

int dv_msgb_finish(struct dv_msgb *b)
{
	uint32_t len;

	if (b->overflow || b->len < sizeof(struct dv_msg_hdr) || b->len > DV_MSG_MAX)
		return -EMSGSIZE;
	len = (uint32_t)b->len;
	memcpy(b->buf + offsetof(struct dv_msg_hdr, len), &len, sizeof(len));
	return 0;
}

/* ---- parsing ---- */

int dv_msg_parse(const void *buf, size_t len, struct dv_msg *ret)
{
	const uint8_t *p = buf;
	struct dv_msg_hdr h;
	size_t off;

	if (!buf || len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, p, sizeof(h));
	if (h.magic != DV_PROTO_MAGIC)
		return -EBADMSG;
	if (h.version != DV_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (len > DV_MSG_MAX || h.len != len)
		return -EBADMSG;

	/* Every attribute, padding included, must lie inside the message, so
	 * that dv_attr_next() can walk without checking again. */
	for (off = sizeof(h); off < len;) {
		struct dv_attr a;

		if (len - off < ATTR_HDRLEN)
			return -EBADMSG;
		memcpy(&a, p + off, sizeof(a));
		if (a.len < ATTR_HDRLEN || ALIGN4(a.len) > len - off)
			return -EBADMSG;
		off += ALIGN4(a.len);
	}

	ret->type = h.type;
	ret->seq = h.seq;
	ret->attrs = p + sizeof(h);
	ret->attrs_len = len - sizeof(h);
	return 0;
}

void dv_attr_iter_init(struct dv_attr_iter *it, const struct dv_msg *m)
{
	it->p = m->attrs;
	it->end = m->attrs + m->attrs_len;
}

int dv_attr_next(struct dv_attr_iter *it, uint16_t *ret_type, const void **ret_val, size_t *ret_len)
{
	struct dv_attr a;

	/* Defensive: the bounds were checked by dv_msg_parse(), but an
	 * iterator over a hand-made dv_msg must not run away either. */
	if (!it->p || (size_t)(it->end - it->p) < ATTR_HDRLEN)
		return 0;
	memcpy(&a, it->p, sizeof(a));
	if (a.len < ATTR_HDRLEN || a.len > (size_t)(it->end - it->p)) {
		it->p = it->end;
		return 0;
	}
	*ret_type = a.type;
	*ret_val = it->p + ATTR_HDRLEN;
	*ret_len = a.len - ATTR_HDRLEN;
	if (ALIGN4(a.len) >= (size_t)(it->end - it->p))
		it->p = it->end;
	else
		it->p += ALIGN4(a.len);
	return 1;
}

int dv_val_u32(const void *v, size_t n, uint32_t *ret)
{
	if (!v || n != sizeof(uint32_t))
		return -EBADMSG;
	memcpy(ret, v, sizeof(uint32_t));
	return 0;
}

/* A string value: at least the NUL, and its only NUL is the last byte. */
static int str_check(const uint8_t *p, size_t n)
{
	if (!p || n < 1 || p[n - 1] != 0 || memchr(p, 0, n) != p + n - 1)
		return -EBADMSG;
	return 0;
}

int dv_val_str(const void *v, size_t n, const char **ret)
{
	if (str_check(v, n) < 0)
		return -EBADMSG;
	*ret = v;
	return 0;
}

int dv_val_addr(const void *v, size_t n, struct dv_addr *ret)
{
	const uint8_t *p = v;
	struct dv_addr a = {0};

	if (!p || n < 1)
		return -EBADMSG;
	if (p[0] == AF_INET && n == 1 + 4) {
		a.family = AF_INET;
		memcpy(a.bytes, p + 1, 4);
	} else if (p[0] == AF_INET6 && n == 1 + 16) {
		a.family = AF_INET6;
		memcpy(a.bytes, p + 1, 16);
		/* One address, one form: the same rule as dv_addr_parse(). */
		if (memcmp(a.bytes, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
			memmove(a.bytes, a.bytes + 12, 4);
			memset(a.bytes + 4, 0, 12);
			a.family = AF_INET;
		}
	} else {
		return -EBADMSG;
	}
	*ret = a;
	return 0;
}

int dv_val_field(const void *v, size_t n, uint8_t *ret_ftype, const char **ret_key, const char **ret_str,
		 uint64_t *ret_u64, bool *ret_bool)
{
	const uint8_t *p = v, *key, *val, *nul;
	size_t vlen;

	if (!p || n < 2)
		return -EBADMSG;
	key = p + 1;
	nul = memchr(key, 0, n - 1);
	if (!nul || nul == key)
		return -EBADMSG; /* no NUL, or an empty key */
	val = nul + 1;
	vlen = n - (size_t)(val - p);

	switch (p[0]) {
	case DV_F_STR:
		if (str_check(val, vlen) < 0)
			return -EBADMSG;
		if (ret_str)
			*ret_str = (const char *)val;
		break;
	case DV_F_U64:
		if (vlen != sizeof(uint64_t))
			return -EBADMSG;
		if (ret_u64)
			memcpy(ret_u64, val, sizeof(uint64_t));
		break;
	case DV_F_BOOL:
		if (vlen != 1 || val[0] > 1)
			return -EBADMSG;
		if (ret_bool)
			*ret_bool = val[0] == 1;
		break;
	default:
		return -EBADMSG;
	}
	if (ret_ftype)
		*ret_ftype = p[0];
	if (ret_key)
		*ret_key = (const char *)key;
	return 0;
}

/* ---- decoding with the rules per message type ---- */

static bool is_request(uint16_t type)
{
	return (type >= DV_MSG_ACTIVATE && type <= DV_MSG_SOURCE_PORTS) || type == DV_MSG_METRICS ||
	       type == DV_MSG_MONITOR;
}

/* The rules of one 32-bit attribute of a request, and why each refusal. */
struct request_u32_rule {
	uint32_t min, max;
	const char *duplicate, *malformed, *out_of_range;
};

static const struct request_u32_rule kind_rule = {
	.min = DV_KIND_API,
	.max = DV_KIND_SOCKET,
	.duplicate = "duplicate kind attribute",
	.malformed = "malformed kind attribute",
	.out_of_range = "kind out of range 1..3",
};

static const struct request_u32_rule rank_rule = {
	.min = 1,
	.max = 254,
	.duplicate = "duplicate rank attribute",
	.malformed = "malformed rank attribute",
	.out_of_range = "rank out of range 1..254",
};

static const struct request_u32_rule source_use_rule = {
	.min = 1,
	.max = 1,
	.duplicate = "duplicate source-use attribute",
	.malformed = "malformed source-use attribute",
	.out_of_range = "source-use must be 1",
};

/* What a request has seen that its struct cannot tell from a zero. */
static const struct request_u32_rule port_rule = {
	.min = 1,
	.max = 65535,
	.duplicate = "duplicate port attribute",
	.malformed = "malformed port attribute",
	.out_of_range = "port out of range 1..65535",
};

struct request_seen {
	bool kind, rank, source_use, port;
};

/* Each request_*() returns NULL, or why the request is refused. */
static const char *request_u32(const struct request_u32_rule *rule, const void *v, size_t n, bool *seen, uint32_t *ret)
{
	if (*seen)
		return rule->duplicate;
	if (dv_val_u32(v, n, ret) < 0)
		return rule->malformed;
	if (*ret < rule->min || *ret > rule->max)
		return rule->out_of_range;
	*seen = true;
	return NULL;
}

static const char *request_addr(struct dv_request *r, const void *v, size_t n)
{
	if (r->has_addr)
		return "duplicate address attribute";
	if (dv_val_addr(v, n, &r->addr) < 0)
		return "malformed address attribute";
	r->has_addr = true;
	return NULL;
}

static const char *request_node(struct dv_request *r, const void *v, size_t n)
{
	const char *name;

	if (r->node[0])
		return "duplicate node attribute";
	if (dv_val_str(v, n, &name) < 0 || n < 2 || n > sizeof(r->node))
		return "malformed node attribute";
	memcpy(r->node, name, n);
	return NULL;
}

static const char *request_attrs(const struct dv_msg *m, struct dv_request *r, struct request_seen *seen)
{
	struct dv_attr_iter it;
	const char *why = NULL;
	const void *v;
	uint16_t t;
	size_t n;

	dv_attr_iter_init(&it, m);
	while (!why && dv_attr_next(&it, &t, &v, &n)) {
		switch (t) {
		case DV_A_ADDR:
			why = request_addr(r, v, n);
			break;
		case DV_A_KIND:
			why = request_u32(&kind_rule, v, n, &seen->kind, &r->kind);
			break;
		case DV_A_RANK:
			why = request_u32(&rank_rule, v, n, &seen->rank, &r->rank);
			break;
		case DV_A_NODE:
			why = request_node(r, v, n);
			break;
		case DV_A_PORT:
			why = request_u32(&port_rule, v, n, &seen->port, &r->port);
			break;
		case DV_A_SOURCE_USE: {
			uint32_t one;

			why = request_u32(&source_use_rule, v, n, &seen->source_use, &one);
			r->source_use = !why;
			break;
		}
		default:
			/* Forward compatibility: a newer client may add
			 * attributes an older daemon does not know. */
			break;
		}
	}
	return why;
}

/* What a request of its type cannot do without. */
static const char *request_missing(const struct dv_request *r, const struct request_seen *seen)
{
	if (seen->port && r->type != DV_MSG_QUIESCE && r->type != DV_MSG_RESUME)
		return "a port is for quiesce and resume only";
	switch (r->type) {
	case DV_MSG_ACTIVATE:
	case DV_MSG_RELEASE:
	case DV_MSG_STANDBY:
	case DV_MSG_MOVE:
	case DV_MSG_DEACTIVATE:
	case DV_MSG_REACTIVATE:
	case DV_MSG_QUIESCE:
	case DV_MSG_RESUME:
	case DV_MSG_SOURCE_PORTS:
		if (!r->has_addr)
			return "address missing";
		break;
	default:
		return NULL;
	}
	if (r->type == DV_MSG_STANDBY && !seen->rank)
		return "rank missing";
	if (r->type == DV_MSG_STANDBY && r->kind == DV_KIND_OPERATOR) /* operator holds have no standby */
		return "standby kind must be api or socket";
	if (r->type == DV_MSG_MOVE && !r->node[0])
		return "node missing";
	if (r->source_use && r->type != DV_MSG_ACTIVATE)
		return "source-use is for an activation only";
	return NULL;
}

int dv_request_decode(const struct dv_msg *m, struct dv_request *ret, const char **ret_why)
{
	struct dv_request r = {.type = m->type, .seq = m->seq};
	struct request_seen seen = {0};
	const char *why;

	if (!is_request(m->type))
		why = "unknown request type";
	else
		why = request_attrs(m, &r, &seen);
	if (!why)
		why = request_missing(&r, &seen);
	if (ret_why)
		*ret_why = why;
	if (why)
		return -EBADMSG;
	*ret = r;
	return 0;
}

int dv_reply_decode(const struct dv_msg *m, struct dv_reply *ret)
{
	bool has_result = false, has_event = false, has_reason = false, has_source = false, has_range = false;
	uint32_t range;
	struct dv_attr_iter it;
	const char *s;
	const void *v;
	uint16_t t;
	size_t n;

	if (m->type != DV_MSG_RESULT && m->type != DV_MSG_EVENT)
		return -EBADMSG;

	memset(ret, 0, sizeof(*ret));
	ret->type = m->type;
	ret->seq = m->seq;

	dv_attr_iter_init(&it, m);
	while (dv_attr_next(&it, &t, &v, &n)) {
		switch (t) {
		case DV_A_RESULT:
			if (has_result || dv_val_u32(v, n, &ret->result) < 0)
				return -EBADMSG;
			has_result = true;
			break;
		case DV_A_EVENT:
			if (has_event || dv_val_u32(v, n, &ret->event) < 0)
				return -EBADMSG;
			has_event = true;
			break;
		case DV_A_ADDR:
			if (ret->has_addr || dv_val_addr(v, n, &ret->addr) < 0)
				return -EBADMSG;
			ret->has_addr = true;
			break;
		case DV_A_REASON:
			if (has_reason || dv_val_str(v, n, &s) < 0 || n > DV_REASON_MAX)
				return -EBADMSG;
			memcpy(ret->reason, s, n);
			has_reason = true;
			break;
		case DV_A_SOURCE:
			if (has_source || dv_val_u32(v, n, &ret->source) < 0)
				return -EBADMSG;
			has_source = true;
			break;
		case DV_A_PORT_RANGE:
			if (has_range || dv_val_u32(v, n, &range) < 0 || (range >> 16) == 0 ||
			    (range >> 16) > (range & 0xffff))
				return -EBADMSG;
			ret->port_lo = (uint16_t)(range >> 16);
			ret->port_hi = (uint16_t)range;
			has_range = true;
			break;
		default:
			break;
		}
	}

	/* A missing REASON is an empty one; the numbers carry the meaning. */
	if (m->type == DV_MSG_RESULT && !has_result)
		return -EBADMSG;
	if (m->type == DV_MSG_EVENT && (!has_event || !ret->has_addr))
		return -EBADMSG;
	return 0;
}
