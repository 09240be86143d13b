/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control protocol: round trips through dv_msgb_* and dv_msg_parse for
 * every message type, and every way a datagram can be malformed. Malformed
 * datagrams are made by hand with raw_*(), byte by byte, so that the tests
 * do not depend on the builder they check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "proto.h"

/* ---- raw message construction ---- */

struct raw {
	uint8_t buf[DV_MSG_MAX + 64];
	size_t len;
};

static void raw_init(struct raw *r, uint16_t type, uint32_t seq)
{
	struct dv_msg_hdr h = {DV_PROTO_MAGIC, DV_PROTO_VERSION, type, 0, seq};

	memset(r->buf, 0, sizeof(r->buf));
	memcpy(r->buf, &h, sizeof(h));
	r->len = sizeof(h);
}

/* An attribute whose header says hdrlen (usually 4 + n), value v[0..n),
 * padded to 4. */
static void raw_attr_len(struct raw *r, uint16_t type, uint16_t hdrlen, const void *v, size_t n)
{
	struct dv_attr a = {type, hdrlen};

	memcpy(r->buf + r->len, &a, sizeof(a));
	if (n)
		memcpy(r->buf + r->len + 4, v, n);
	r->len += (4 + n + 3) & ~(size_t)3;
}

static void raw_attr(struct raw *r, uint16_t type, const void *v, size_t n)
{
	raw_attr_len(r, type, (uint16_t)(4 + n), v, n);
}

static void raw_u32(struct raw *r, uint16_t type, uint32_t v)
{
	raw_attr(r, type, &v, sizeof(v));
}

static void raw_addr4(struct raw *r, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	uint8_t v[5] = {AF_INET, a, b, c, d};

	raw_attr(r, DV_A_ADDR, v, sizeof(v));
}

/* Fill in the header length with the real one. */
static void raw_fix(struct raw *r)
{
	uint32_t len = (uint32_t)r->len;

	memcpy(r->buf + offsetof(struct dv_msg_hdr, len), &len, sizeof(len));
}

static int raw_parse(struct raw *r, struct dv_msg *m)
{
	return dv_msg_parse(r->buf, r->len, m);
}

static int raw_request(struct raw *r, struct dv_request *req, const char **why)
{
	struct dv_msg m;

	raw_fix(r);
	assert_int_equal(raw_parse(r, &m), 0);
	return dv_request_decode(&m, req, why);
}

static int raw_reply(struct raw *r, struct dv_reply *rep)
{
	struct dv_msg m;

	raw_fix(r);
	assert_int_equal(raw_parse(r, &m), 0);
	return dv_reply_decode(&m, rep);
}

/* ---- builder helpers ---- */

static struct dv_msgb *msgb_new(uint16_t type, uint32_t seq)
{
	struct dv_msgb *b = malloc(sizeof(*b));

	assert_non_null(b);
	dv_msgb_init(b, type, seq);
	return b;
}

static void parse_b(struct dv_msgb *b, struct dv_msg *m)
{
	assert_int_equal(dv_msgb_finish(b), 0);
	assert_int_equal(b->len % 4, 0);
	assert_int_equal(dv_msg_parse(b->buf, b->len, m), 0);
}

static struct dv_addr addr(const char *s)
{
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

/* ---- round trips ---- */

static void test_header(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_RELOAD, 0xdeadbeef);
	struct dv_msg_hdr h;
	struct dv_msg m;

	parse_b(b, &m);
	assert_int_equal(b->len, sizeof(struct dv_msg_hdr));
	memcpy(&h, b->buf, sizeof(h));
	assert_int_equal(h.magic, DV_PROTO_MAGIC);
	assert_memory_equal(b->buf, "DVIP", 4); /* the magic reads as text */
	assert_int_equal(h.version, DV_PROTO_VERSION);
	assert_int_equal(h.type, DV_MSG_RELOAD);
	assert_int_equal(h.len, b->len);
	assert_int_equal(h.seq, 0xdeadbeef);
	assert_int_equal(m.type, DV_MSG_RELOAD);
	assert_int_equal(m.seq, 0xdeadbeef);
	assert_int_equal(m.attrs_len, 0);
	free(b);
}

static void test_request_activate(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_ACTIVATE, 7);
	struct dv_addr a = addr("10.1.1.5");
	struct dv_request req;
	const char *why = "x";
	struct dv_msg m;

	dv_msgb_put_addr(b, &a);
	dv_msgb_put_u32(b, DV_A_KIND, 2);
	parse_b(b, &m);
	assert_int_equal(dv_request_decode(&m, &req, &why), 0);
	assert_null(why);
	assert_int_equal(req.type, DV_MSG_ACTIVATE);
	assert_int_equal(req.seq, 7);
	assert_true(req.has_addr);
	assert_true(dv_addr_eq(&req.addr, &a));
	assert_int_equal(req.kind, 2);
	assert_int_equal(req.rank, 0);
	free(b);
}

static void test_request_activate_default_kind(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_ACTIVATE, 1);
	struct dv_addr a = addr("fd00:1::5");
	struct dv_request req;
	struct dv_msg m;

	dv_msgb_put_addr(b, &a);
	parse_b(b, &m);
	assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
	assert_int_equal(req.kind, 0); /* absent: the daemon applies api */
	assert_int_equal(req.addr.family, AF_INET6);
	assert_true(dv_addr_eq(&req.addr, &a));
	free(b);
}

static void test_request_release(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_RELEASE, 2);
	struct dv_addr a = addr("10.1.1.6");
	struct dv_request req;
	struct dv_msg m;

	dv_msgb_put_addr(b, &a);
	dv_msgb_put_u32(b, DV_A_KIND, 1);
	parse_b(b, &m);
	assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
	assert_int_equal(req.type, DV_MSG_RELEASE);
	assert_int_equal(req.kind, 1);
	assert_true(dv_addr_eq(&req.addr, &a));
	free(b);
}

static void test_request_standby(void **state)
{
	static const uint32_t ranks[] = {1, 100, 254};

	for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++) {
		struct dv_msgb *b = msgb_new(DV_MSG_STANDBY, 3);
		struct dv_addr a = addr("10.1.1.7");
		struct dv_request req;
		struct dv_msg m;

		dv_msgb_put_addr(b, &a);
		dv_msgb_put_u32(b, DV_A_RANK, ranks[i]);
		dv_msgb_put_u32(b, DV_A_KIND, 3);
		parse_b(b, &m);
		assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
		assert_int_equal(req.type, DV_MSG_STANDBY);
		assert_int_equal(req.rank, ranks[i]);
		assert_int_equal(req.kind, 3);
		free(b);
	}
}

static void test_request_status_config_reload(void **state)
{
	static const uint16_t types[] = {DV_MSG_STATUS, DV_MSG_CONFIG, DV_MSG_RELOAD, DV_MSG_TARGETS};
	struct dv_request req;
	struct dv_msg m;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct dv_msgb *b = msgb_new(types[i], 10 + (uint32_t)i);

		parse_b(b, &m);
		assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
		assert_int_equal(req.type, types[i]);
		assert_int_equal(req.seq, 10 + i);
		assert_false(req.has_addr);
		free(b);
	}

	/* STATUS narrowed to one VIPA */
	struct dv_msgb *b = msgb_new(DV_MSG_STATUS, 20);
	struct dv_addr a = addr("10.9.9.9");

	dv_msgb_put_addr(b, &a);
	parse_b(b, &m);
	assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
	assert_true(req.has_addr);
	assert_true(dv_addr_eq(&req.addr, &a));
	free(b);
}

static void test_reply_result(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_RESULT, 9);
	struct dv_addr a = addr("10.1.1.5");
	struct dv_reply rep;
	struct dv_msg m;

	dv_msgb_put_u32(b, DV_A_RESULT, DV_R_HELD);
	dv_msgb_put_str(b, DV_A_REASON, "10.1.1.5 is held by n2");
	dv_msgb_put_addr(b, &a);
	parse_b(b, &m);
	assert_int_equal(dv_reply_decode(&m, &rep), 0);
	assert_int_equal(rep.type, DV_MSG_RESULT);
	assert_int_equal(rep.seq, 9);
	assert_int_equal(rep.result, DV_R_HELD);
	assert_string_equal(rep.reason, "10.1.1.5 is held by n2");
	assert_true(rep.has_addr);
	assert_true(dv_addr_eq(&rep.addr, &a));
	free(b);
}

static void test_reply_result_minimal(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_RESULT, 1);
	struct dv_reply rep;
	struct dv_msg m;

	dv_msgb_put_u32(b, DV_A_RESULT, DV_R_OK);
	parse_b(b, &m);
	assert_int_equal(dv_reply_decode(&m, &rep), 0);
	assert_int_equal(rep.result, 0);
	assert_string_equal(rep.reason, "");
	assert_false(rep.has_addr);
	free(b);
}

static void test_reply_event(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_EVENT, 0);
	struct dv_addr a = addr("fd00:1::77");
	struct dv_reply rep;
	struct dv_msg m;

	dv_msgb_put_u32(b, DV_A_EVENT, 2);
	dv_msgb_put_addr(b, &a);
	dv_msgb_put_str(b, DV_A_REASON, "quorum lost");
	parse_b(b, &m);
	assert_int_equal(dv_reply_decode(&m, &rep), 0);
	assert_int_equal(rep.type, DV_MSG_EVENT);
	assert_int_equal(rep.seq, 0);
	assert_int_equal(rep.event, 2);
	assert_true(dv_addr_eq(&rep.addr, &a));
	assert_string_equal(rep.reason, "quorum lost");
	free(b);
}

static void test_record_fields(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_RECORD, 4);
	const char *key, *str;
	struct dv_attr_iter it;
	uint64_t u64;
	uint8_t ftype;
	const void *v;
	struct dv_msg m;
	uint32_t rt;
	uint16_t t;
	size_t n;
	bool bv;

	dv_msgb_put_u32(b, DV_A_RECTYPE, DV_REC_VIPA);
	dv_msgb_field_str(b, "addr", "10.1.1.5");
	dv_msgb_field_u64(b, "since", UINT64_C(1714567890123));
	dv_msgb_field_bool(b, "installed", true);
	dv_msgb_field_bool(b, "x", false);
	dv_msgb_field_str(b, "reason", "");
	dv_msgb_field_u64(b, "max", UINT64_MAX);
	parse_b(b, &m);
	assert_int_equal(m.type, DV_MSG_RECORD);

	dv_attr_iter_init(&it, &m);
	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 1);
	assert_int_equal(t, DV_A_RECTYPE);
	assert_int_equal(dv_val_u32(v, n, &rt), 0);
	assert_int_equal(rt, DV_REC_VIPA);

	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 1);
	assert_int_equal(t, DV_A_FIELD);
	assert_int_equal(dv_val_field(v, n, &ftype, &key, &str, &u64, &bv), 0);
	assert_int_equal(ftype, DV_F_STR);
	assert_string_equal(key, "addr");
	assert_string_equal(str, "10.1.1.5");

	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 1);
	assert_int_equal(dv_val_field(v, n, &ftype, &key, &str, &u64, &bv), 0);
	assert_int_equal(ftype, DV_F_U64);
	assert_string_equal(key, "since");
	assert_true(u64 == UINT64_C(1714567890123));

	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 1);
	assert_int_equal(dv_val_field(v, n, &ftype, &key, &str, &u64, &bv), 0);
	assert_int_equal(ftype, DV_F_BOOL);
	assert_string_equal(key, "installed");
	assert_true(bv);

	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 1);
	assert_int_equal(dv_val_field(v, n, &ftype, &key, NULL, NULL, &bv), 0);
	assert_string_equal(key, "x");
	assert_false(bv);

	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 1);
	assert_int_equal(dv_val_field(v, n, &ftype, &key, &str, NULL, NULL), 0);
	assert_string_equal(key, "reason");
	assert_string_equal(str, "");

	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 1);
	assert_int_equal(dv_val_field(v, n, NULL, NULL, NULL, &u64, NULL), 0);
	assert_true(u64 == UINT64_MAX);

	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 0);
	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 0); /* stays at the end */
	free(b);
}

static void test_attr_padding(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_RESULT, 1);
	struct dv_attr a;

	/* "ab" + NUL = 3 bytes: header 4 + 3 = 7, padded to 8, pad zeroed */
	memset(b->buf, 0xaa, sizeof(b->buf));
	dv_msgb_init(b, DV_MSG_RESULT, 1);
	dv_msgb_put_str(b, DV_A_REASON, "ab");
	assert_int_equal(b->len, sizeof(struct dv_msg_hdr) + 8);
	memcpy(&a, b->buf + sizeof(struct dv_msg_hdr), sizeof(a));
	assert_int_equal(a.type, DV_A_REASON);
	assert_int_equal(a.len, 7);
	assert_int_equal(b->buf[sizeof(struct dv_msg_hdr) + 7], 0);

	/* an IPv4 address: family + 4 = 5 bytes, header says 9, takes 12 */
	struct dv_addr ad = addr("1.2.3.4");

	dv_msgb_put_addr(b, &ad);
	assert_int_equal(b->len, sizeof(struct dv_msg_hdr) + 8 + 12);
	memcpy(&a, b->buf + sizeof(struct dv_msg_hdr) + 8, sizeof(a));
	assert_int_equal(a.len, 9);
	assert_int_equal(b->buf[sizeof(struct dv_msg_hdr) + 8 + 4], AF_INET);
	assert_memory_equal(b->buf + sizeof(struct dv_msg_hdr) + 8 + 5, "\x01\x02\x03\x04", 4);
	for (int i = 9; i < 12; i++)
		assert_int_equal(b->buf[sizeof(struct dv_msg_hdr) + 8 + i], 0);
	free(b);
}

static void test_reason_truncated(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_RESULT, 1);
	char longs[1000];
	struct dv_reply rep;
	struct dv_msg m;

	memset(longs, 'r', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = 0;
	dv_msgb_put_u32(b, DV_A_RESULT, 0);
	dv_msgb_put_str(b, DV_A_REASON, longs);
	parse_b(b, &m);
	assert_int_equal(dv_reply_decode(&m, &rep), 0);
	assert_int_equal(strlen(rep.reason), DV_REASON_MAX - 1);
	free(b);
}

static void test_long_string_not_truncated(void **state)
{
	/* Only REASON is cut; a record field carries its whole value. */
	struct dv_msgb *b = msgb_new(DV_MSG_RECORD, 1);
	char longs[1000];
	struct dv_attr_iter it;
	const char *key, *str;
	const void *v;
	struct dv_msg m;
	uint16_t t;
	size_t n;

	memset(longs, 's', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = 0;
	dv_msgb_field_str(b, "text", longs);
	parse_b(b, &m);
	dv_attr_iter_init(&it, &m);
	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 1);
	assert_int_equal(dv_val_field(v, n, NULL, &key, &str, NULL, NULL), 0);
	assert_string_equal(str, longs);
	free(b);
}

static void test_v4mapped_addr(void **state)
{
	/* ::ffff:10.1.1.5 on the wire is 10.1.1.5, as dv_addr_parse says */
	uint8_t v[17] = {AF_INET6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 1, 5};
	struct dv_addr a, want = addr("10.1.1.5");

	assert_int_equal(dv_val_addr(v, sizeof(v), &a), 0);
	assert_true(dv_addr_eq(&a, &want));
}

/* ---- building limits ---- */

static void test_msgb_overflow(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_RECORD, 1);
	char s[1000];
	size_t puts = 0;

	memset(s, 'x', sizeof(s) - 1);
	s[sizeof(s) - 1] = 0;
	while (!b->overflow) {
		dv_msgb_field_str(b, "k", s);
		puts++;
	}
	assert_true(puts > 60);
	assert_true(b->len <= DV_MSG_MAX);
	assert_int_equal(dv_msgb_finish(b), -EMSGSIZE);
	/* a small put after the overflow must not succeed either */
	dv_msgb_put_u32(b, DV_A_RESULT, 0);
	assert_int_equal(dv_msgb_finish(b), -EMSGSIZE);

	/* init resets */
	dv_msgb_init(b, DV_MSG_RELOAD, 1);
	assert_int_equal(dv_msgb_finish(b), 0);
	free(b);
}

static void test_msgb_exact_fit(void **state)
{
	/* A message of exactly DV_MSG_MAX bytes is allowed. */
	struct dv_msgb *b = msgb_new(DV_MSG_RECORD, 1);
	size_t room = DV_MSG_MAX;
	char *s;
	struct dv_msg m;

	/* u16 attribute length caps one attribute at 65535; use two string
	 * attributes of an unknown type (REASON would be truncated) */
	s = malloc(room);
	assert_non_null(s);
	memset(s, 'y', room);
	s[30000] = 0;
	dv_msgb_put_str(b, 105, s);
	memset(s, 'y', room);
	s[DV_MSG_MAX - b->len - 4 - 1] = 0; /* header + chars + NUL fill it */
	dv_msgb_put_str(b, 105, s);
	assert_false(b->overflow);
	assert_int_equal(b->len, DV_MSG_MAX);
	parse_b(b, &m);
	dv_msgb_put_u32(b, DV_A_RESULT, 0);
	assert_true(b->overflow);
	assert_int_equal(dv_msgb_finish(b), -EMSGSIZE);
	free(s);
	free(b);
}

static void test_msgb_attr_too_long(void **state)
{
	/* a value over the u16 attribute length cannot be encoded */
	struct dv_msgb *b = msgb_new(DV_MSG_RECORD, 1);
	char *s = malloc(70000);

	assert_non_null(s);
	memset(s, 'z', 70000);
	s[65532] = 0; /* 65533 bytes with NUL: 4 + 65533 > 65535 */
	dv_msgb_field_str(b, "t", s);
	assert_int_equal(dv_msgb_finish(b), -EMSGSIZE);
	free(s);
	free(b);
}

static void test_msgb_bad_input(void **state)
{
	struct dv_msgb *b = msgb_new(DV_MSG_ACTIVATE, 1);
	struct dv_addr unset = {0};

	dv_msgb_put_addr(b, &unset);
	assert_int_equal(dv_msgb_finish(b), -EMSGSIZE);

	dv_msgb_init(b, DV_MSG_RECORD, 1);
	dv_msgb_field_str(b, "", "v");
	assert_int_equal(dv_msgb_finish(b), -EMSGSIZE);

	dv_msgb_init(b, DV_MSG_RECORD, 1);
	dv_msgb_field_u64(b, NULL, 1);
	assert_int_equal(dv_msgb_finish(b), -EMSGSIZE);

	/* NULL strings are empty ones */
	dv_msgb_init(b, DV_MSG_RECORD, 1);
	dv_msgb_field_str(b, "k", NULL);
	dv_msgb_put_str(b, DV_A_REASON, NULL);
	assert_int_equal(dv_msgb_finish(b), 0);
	free(b);
}

/* ---- malformed messages ---- */

static void test_short_header(void **state)
{
	struct raw r;
	struct dv_msg m;

	raw_init(&r, DV_MSG_RELOAD, 1);
	raw_fix(&r);
	for (size_t n = 0; n < sizeof(struct dv_msg_hdr); n++)
		assert_int_equal(dv_msg_parse(r.buf, n, &m), -EBADMSG);
	assert_int_equal(dv_msg_parse(NULL, 0, &m), -EBADMSG);
	assert_int_equal(dv_msg_parse(r.buf, sizeof(struct dv_msg_hdr), &m), 0);
}

static void test_bad_magic(void **state)
{
	struct raw r;
	struct dv_msg m;

	raw_init(&r, DV_MSG_RELOAD, 1);
	raw_fix(&r);
	r.buf[0] ^= 0x20;
	assert_int_equal(raw_parse(&r, &m), -EBADMSG);
}

static void test_other_version(void **state)
{
	struct raw r;
	struct dv_msg m;
	uint16_t v;

	for (v = 0; v < 4; v++) {
		if (v == DV_PROTO_VERSION)
			continue;
		raw_init(&r, DV_MSG_RELOAD, 1);
		memcpy(r.buf + offsetof(struct dv_msg_hdr, version), &v, sizeof(v));
		raw_fix(&r);
		assert_int_equal(raw_parse(&r, &m), -EPROTONOSUPPORT);
	}
}

static void test_len_mismatch(void **state)
{
	struct raw r;
	struct dv_msg m;
	uint32_t len;

	raw_init(&r, DV_MSG_RESULT, 1);
	raw_u32(&r, DV_A_RESULT, 0);
	raw_fix(&r);
	assert_int_equal(raw_parse(&r, &m), 0);
	/* datagram longer and shorter than the header says */
	assert_int_equal(dv_msg_parse(r.buf, r.len + 4, &m), -EBADMSG);
	assert_int_equal(dv_msg_parse(r.buf, r.len - 4, &m), -EBADMSG);
	assert_int_equal(dv_msg_parse(r.buf, r.len - 1, &m), -EBADMSG);
	/* header length wrong */
	len = (uint32_t)r.len + 4;
	memcpy(r.buf + offsetof(struct dv_msg_hdr, len), &len, sizeof(len));
	assert_int_equal(raw_parse(&r, &m), -EBADMSG);
	len = 0;
	memcpy(r.buf + offsetof(struct dv_msg_hdr, len), &len, sizeof(len));
	assert_int_equal(raw_parse(&r, &m), -EBADMSG);
}

static void test_len_too_big(void **state)
{
	static const uint8_t zeros[60000];
	struct raw *r = malloc(sizeof(*r));
	struct dv_msg m;

	assert_non_null(r);
	raw_init(r, DV_MSG_RECORD, 1);
	/* unknown attributes filling DV_MSG_MAX + 4 bytes, header says so */
	while (r->len < DV_MSG_MAX + 4) {
		size_t n = DV_MSG_MAX + 4 - r->len - 4;

		if (n > 60000)
			n = 60000;
		raw_attr(r, 999, zeros, n);
	}
	assert_int_equal(r->len, DV_MSG_MAX + 4);
	raw_fix(r);
	assert_int_equal(raw_parse(r, &m), -EBADMSG);
	/* exactly DV_MSG_MAX is fine */
	raw_init(r, DV_MSG_RECORD, 1);
	raw_attr(r, 999, zeros, 60000);
	raw_attr(r, 999, zeros, DV_MSG_MAX - r->len - 4);
	assert_int_equal(r->len, DV_MSG_MAX);
	raw_fix(r);
	assert_int_equal(raw_parse(r, &m), 0);
	free(r);
}

static void test_attr_len_lt4(void **state)
{
	struct raw r;
	struct dv_msg m;

	for (uint16_t l = 0; l < 4; l++) {
		raw_init(&r, DV_MSG_RESULT, 1);
		raw_attr_len(&r, DV_A_RESULT, l, NULL, 0);
		raw_fix(&r);
		assert_int_equal(raw_parse(&r, &m), -EBADMSG);
	}
	/* an empty value (len 4) is well-formed at this level */
	raw_init(&r, DV_MSG_RESULT, 1);
	raw_attr_len(&r, 999, 4, NULL, 0);
	raw_fix(&r);
	assert_int_equal(raw_parse(&r, &m), 0);
}

static void test_attr_overrun(void **state)
{
	uint32_t v = 0;
	struct raw r;
	struct dv_msg m;

	/* attribute length beyond the message */
	raw_init(&r, DV_MSG_RESULT, 1);
	raw_attr_len(&r, DV_A_RESULT, 12, &v, 4);
	raw_fix(&r);
	assert_int_equal(raw_parse(&r, &m), -EBADMSG);

	/* a truncated attribute header (2 bytes left) */
	raw_init(&r, DV_MSG_RESULT, 1);
	raw_u32(&r, DV_A_RESULT, 0);
	r.len += 2;
	raw_fix(&r);
	assert_int_equal(raw_parse(&r, &m), -EBADMSG);

	/* the last attribute's padding missing: value 1 byte, message ends
	 * right after it */
	raw_init(&r, DV_MSG_RESULT, 1);
	raw_attr(&r, 999, "a", 1);
	r.len -= 3;
	raw_fix(&r);
	assert_int_equal(raw_parse(&r, &m), -EBADMSG);

	/* an attribute claiming the maximum u16 length */
	raw_init(&r, DV_MSG_RESULT, 1);
	raw_attr_len(&r, 999, UINT16_MAX, &v, 4);
	raw_fix(&r);
	assert_int_equal(raw_parse(&r, &m), -EBADMSG);
}

static void test_string_values(void **state)
{
	const char *s;

	assert_int_equal(dv_val_str("abc", 4, &s), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(dv_val_str("", 1, &s), 0);
	assert_int_equal(dv_val_str("abc", 3, &s), -EBADMSG);	  /* no NUL */
	assert_int_equal(dv_val_str("a\0bc", 5, &s), -EBADMSG);	  /* embedded NUL */
	assert_int_equal(dv_val_str("abc\0\0", 5, &s), -EBADMSG); /* two NULs at the end */
	assert_int_equal(dv_val_str("", 0, &s), -EBADMSG);	  /* empty value */
}

static void test_reason_without_nul(void **state)
{
	struct dv_reply rep;
	struct raw r;

	raw_init(&r, DV_MSG_RESULT, 1);
	raw_u32(&r, DV_A_RESULT, 0);
	raw_attr(&r, DV_A_REASON, "oops", 4);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);

	raw_init(&r, DV_MSG_RESULT, 1);
	raw_u32(&r, DV_A_RESULT, 0);
	raw_attr(&r, DV_A_REASON, "oo\0ps", 6);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);
}

static void test_reason_too_long(void **state)
{
	char s[DV_REASON_MAX + 1];
	struct dv_reply rep;
	struct raw r;

	memset(s, 'q', sizeof(s));
	s[DV_REASON_MAX - 1] = 0; /* 255 chars + NUL: the maximum */
	raw_init(&r, DV_MSG_RESULT, 1);
	raw_u32(&r, DV_A_RESULT, 0);
	raw_attr(&r, DV_A_REASON, s, DV_REASON_MAX);
	assert_int_equal(raw_reply(&r, &rep), 0);
	assert_int_equal(strlen(rep.reason), DV_REASON_MAX - 1);

	memset(s, 'q', sizeof(s));
	s[DV_REASON_MAX] = 0; /* one more */
	raw_init(&r, DV_MSG_RESULT, 1);
	raw_u32(&r, DV_A_RESULT, 0);
	raw_attr(&r, DV_A_REASON, s, DV_REASON_MAX + 1);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);
}

static void test_u32_size(void **state)
{
	uint8_t v[8] = {1, 0, 0, 0, 0, 0, 0, 0};
	struct dv_request req;
	const char *why;
	uint32_t u;
	struct raw r;

	assert_int_equal(dv_val_u32(v, 4, &u), 0);
	assert_int_equal(u, 1);
	for (size_t n = 0; n <= 8; n++)
		if (n != 4)
			assert_int_equal(dv_val_u32(v, n, &u), -EBADMSG);

	raw_init(&r, DV_MSG_ACTIVATE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr(&r, DV_A_KIND, v, 2);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_non_null(why);

	raw_init(&r, DV_MSG_STANDBY, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr(&r, DV_A_RANK, v, 8);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);

	raw_init(&r, DV_MSG_RESULT, 1);
	raw_attr(&r, DV_A_RESULT, v, 1);
	struct dv_reply rep;
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);
}

static void test_addr_values(void **state)
{
	uint8_t v4[5] = {AF_INET, 10, 1, 1, 5};
	uint8_t v6[17] = {AF_INET6, 0xfd, 0, 0, 1};
	uint8_t buf[32] = {0};
	struct dv_addr a;

	assert_int_equal(dv_val_addr(v4, sizeof(v4), &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(dv_val_addr(v6, sizeof(v6), &a), 0);
	assert_int_equal(a.family, AF_INET6);

	/* family/length mismatch */
	buf[0] = AF_INET;
	assert_int_equal(dv_val_addr(buf, 17, &a), -EBADMSG);
	assert_int_equal(dv_val_addr(buf, 4, &a), -EBADMSG);
	assert_int_equal(dv_val_addr(buf, 6, &a), -EBADMSG);
	buf[0] = AF_INET6;
	assert_int_equal(dv_val_addr(buf, 5, &a), -EBADMSG);
	assert_int_equal(dv_val_addr(buf, 16, &a), -EBADMSG);
	assert_int_equal(dv_val_addr(buf, 18, &a), -EBADMSG);
	/* unknown family, empty */
	buf[0] = 0;
	assert_int_equal(dv_val_addr(buf, 5, &a), -EBADMSG);
	buf[0] = AF_UNIX;
	assert_int_equal(dv_val_addr(buf, 5, &a), -EBADMSG);
	assert_int_equal(dv_val_addr(buf, 0, &a), -EBADMSG);

	/* in a request */
	struct dv_request req;
	const char *why;
	struct raw r;

	raw_init(&r, DV_MSG_ACTIVATE, 1);
	buf[0] = AF_INET6;
	raw_attr(&r, DV_A_ADDR, buf, 5);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_non_null(why);
}

static void test_field_values(void **state)
{
	const char *key, *str;
	uint8_t ft;
	uint64_t u;
	bool b;

	/* good ones */
	assert_int_equal(dv_val_field("\x01k\0v", 5, &ft, &key, &str, &u, &b), 0);
	assert_int_equal(ft, DV_F_STR);
	assert_string_equal(key, "k");
	assert_string_equal(str, "v");
	assert_int_equal(dv_val_field("\x02k\0\x01\0\0\0\0\0\0\0", 11, &ft, &key, &str, &u, &b), 0);
	assert_true(u == 1);
	assert_int_equal(dv_val_field("\x03k\0\x01", 4, &ft, &key, &str, &u, &b), 0);
	assert_true(b);

	/* empty value, no key NUL, empty key */
	assert_int_equal(dv_val_field("", 0, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x01", 1, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x01kk", 3, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x01\0v", 4, &ft, &key, &str, &u, &b), -EBADMSG);
	/* string value without NUL, with an embedded NUL, missing */
	assert_int_equal(dv_val_field("\x01k\0v", 4, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x01k\0v\0w", 7, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x01k", 3, &ft, &key, &str, &u, &b), -EBADMSG);
	/* u64 of the wrong size */
	assert_int_equal(dv_val_field("\x02k\0\x01\0\0\0", 7, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x02k\0\x01\0\0\0\0\0\0\0\0", 12, &ft, &key, &str, &u, &b), -EBADMSG);
	/* bool not 0/1, of the wrong size */
	assert_int_equal(dv_val_field("\x03k\0\x02", 4, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x03k\0\x01\x00", 5, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x03k", 3, &ft, &key, &str, &u, &b), -EBADMSG);
	/* unknown field type */
	assert_int_equal(dv_val_field("\x09k\0v", 5, &ft, &key, &str, &u, &b), -EBADMSG);
	assert_int_equal(dv_val_field("\x00k\0v", 5, &ft, &key, &str, &u, &b), -EBADMSG);
}

static void test_duplicate_attr(void **state)
{
	static const struct {
		uint16_t msg, attr;
	} cases[] = {
		{DV_MSG_ACTIVATE, DV_A_ADDR},
		{DV_MSG_ACTIVATE, DV_A_KIND},
		{DV_MSG_STANDBY, DV_A_RANK},
	};
	struct dv_request req;
	struct dv_reply rep;
	const char *why;
	struct raw r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		raw_init(&r, cases[i].msg, 1);
		raw_addr4(&r, 10, 1, 1, 5);
		raw_u32(&r, DV_A_RANK, 5);
		raw_u32(&r, DV_A_KIND, 1);
		if (cases[i].attr == DV_A_ADDR)
			raw_addr4(&r, 10, 1, 1, 6);
		else
			raw_u32(&r, cases[i].attr, 1);
		why = NULL;
		assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
		assert_non_null(why);
		assert_non_null(strstr(why, "duplicate"));
	}

	raw_init(&r, DV_MSG_RESULT, 1);
	raw_u32(&r, DV_A_RESULT, 0);
	raw_u32(&r, DV_A_RESULT, 0);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);

	raw_init(&r, DV_MSG_RESULT, 1);
	raw_u32(&r, DV_A_RESULT, 0);
	raw_attr(&r, DV_A_REASON, "a", 2);
	raw_attr(&r, DV_A_REASON, "b", 2);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);

	raw_init(&r, DV_MSG_EVENT, 0);
	raw_u32(&r, DV_A_EVENT, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_addr4(&r, 10, 1, 1, 5);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);

	raw_init(&r, DV_MSG_EVENT, 0);
	raw_u32(&r, DV_A_EVENT, 1);
	raw_u32(&r, DV_A_EVENT, 2);
	raw_addr4(&r, 10, 1, 1, 5);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);
}

static void test_missing_attr(void **state)
{
	struct dv_request req;
	struct dv_reply rep;
	const char *why;
	struct raw r;

	raw_init(&r, DV_MSG_ACTIVATE, 1);
	raw_u32(&r, DV_A_KIND, 1);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "address missing");

	raw_init(&r, DV_MSG_RELEASE, 1);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "address missing");

	raw_init(&r, DV_MSG_STANDBY, 1);
	raw_u32(&r, DV_A_RANK, 10);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "address missing");

	raw_init(&r, DV_MSG_STANDBY, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "rank missing");

	raw_init(&r, DV_MSG_RESULT, 1);
	raw_attr(&r, DV_A_REASON, "no result", 10);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);

	raw_init(&r, DV_MSG_EVENT, 0);
	raw_addr4(&r, 10, 1, 1, 5);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);

	raw_init(&r, DV_MSG_EVENT, 0);
	raw_u32(&r, DV_A_EVENT, 1);
	assert_int_equal(raw_reply(&r, &rep), -EBADMSG);
}

static void test_request_move(void **state)
{
	char longname[DV_PROTO_NODE_MAX + 1];
	struct dv_msgb *b = msgb_new(DV_MSG_MOVE, 4);
	struct dv_addr a = addr("10.1.1.8");
	struct dv_request req;
	const char *why;
	struct dv_msg m;
	struct raw r;

	(void)state;
	dv_msgb_put_addr(b, &a);
	dv_msgb_put_str(b, DV_A_NODE, "n2");
	parse_b(b, &m);
	assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
	assert_int_equal(req.type, DV_MSG_MOVE);
	assert_true(dv_addr_eq(&req.addr, &a));
	assert_string_equal(req.node, "n2");
	free(b);

	/* other requests have no node */
	b = msgb_new(DV_MSG_ACTIVATE, 5);
	dv_msgb_put_addr(b, &a);
	parse_b(b, &m);
	assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
	assert_string_equal(req.node, "");
	free(b);

	raw_init(&r, DV_MSG_MOVE, 1);
	raw_attr(&r, DV_A_NODE, "n2", 3);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "address missing");

	/* source use: 1, once, on an activation only */
	raw_init(&r, DV_MSG_ACTIVATE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_u32(&r, DV_A_SOURCE_USE, 1);
	assert_int_equal(raw_request(&r, &req, &why), 0);
	assert_true(req.source_use);
	raw_u32(&r, DV_A_SOURCE_USE, 1);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "duplicate source-use attribute");
	raw_init(&r, DV_MSG_ACTIVATE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_u32(&r, DV_A_SOURCE_USE, 2);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "source-use must be 1");
	raw_init(&r, DV_MSG_RELEASE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_u32(&r, DV_A_SOURCE_USE, 1);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "source-use is for an activation only");

	raw_init(&r, DV_MSG_MOVE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "node missing");

	raw_init(&r, DV_MSG_MOVE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr(&r, DV_A_NODE, "n2", 3);
	raw_attr(&r, DV_A_NODE, "n3", 3);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "duplicate node attribute");

	/* empty, without its NUL, with an inner NUL, too long */
	raw_init(&r, DV_MSG_MOVE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr(&r, DV_A_NODE, "", 1);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "malformed node attribute");
	raw_init(&r, DV_MSG_MOVE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr(&r, DV_A_NODE, "n2", 2);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "malformed node attribute");
	raw_init(&r, DV_MSG_MOVE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr(&r, DV_A_NODE, "n\0002", 4);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	raw_init(&r, DV_MSG_MOVE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr(&r, DV_A_NODE, longname, sizeof(longname));
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "malformed node attribute");
	/* the longest name fits */
	longname[DV_PROTO_NODE_MAX - 1] = 0;
	raw_init(&r, DV_MSG_MOVE, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr(&r, DV_A_NODE, longname, DV_PROTO_NODE_MAX);
	assert_int_equal(raw_request(&r, &req, &why), 0);
	assert_int_equal(strlen(req.node), DV_PROTO_NODE_MAX - 1);
}

static void test_request_define_and_node_ops(void **state)
{
	static const uint16_t with_addr[] = {DV_MSG_DEACTIVATE, DV_MSG_REACTIVATE};
	static const uint16_t node_only[] = {DV_MSG_LEAVE, DV_MSG_JOIN};
	struct dv_addr a = addr("10.9.9.1");
	struct dv_request req;
	const char *why;
	struct dv_msg m;
	struct raw r;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct dv_msgb *b = msgb_new(with_addr[i], 7);

		/* the node is optional: this node by default */
		dv_msgb_put_addr(b, &a);
		parse_b(b, &m);
		assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
		assert_int_equal(req.type, with_addr[i]);
		assert_true(dv_addr_eq(&req.addr, &a));
		assert_string_equal(req.node, "");
		free(b);
		b = msgb_new(with_addr[i], 8);
		dv_msgb_put_addr(b, &a);
		dv_msgb_put_str(b, DV_A_NODE, "n3");
		parse_b(b, &m);
		assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
		assert_string_equal(req.node, "n3");
		free(b);

		raw_init(&r, with_addr[i], 1);
		raw_attr(&r, DV_A_NODE, "n2", 3);
		assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
		assert_string_equal(why, "address missing");
		raw_init(&r, with_addr[i], 1);
		raw_addr4(&r, 10, 1, 1, 5);
		raw_attr(&r, DV_A_NODE, "", 1);
		assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
		assert_string_equal(why, "malformed node attribute");
	}
	for (size_t i = 0; i < 2; i++) {
		struct dv_msgb *b = msgb_new(node_only[i], 9);

		parse_b(b, &m);
		assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
		assert_int_equal(req.type, node_only[i]);
		assert_false(req.has_addr);
		assert_string_equal(req.node, "");
		free(b);
		b = msgb_new(node_only[i], 10);
		dv_msgb_put_str(b, DV_A_NODE, "n1");
		parse_b(b, &m);
		assert_int_equal(dv_request_decode(&m, &req, NULL), 0);
		assert_string_equal(req.node, "n1");
		free(b);

		raw_init(&r, node_only[i], 1);
		raw_attr(&r, DV_A_NODE, "n1", 3);
		raw_attr(&r, DV_A_NODE, "n1", 3);
		assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
		assert_string_equal(why, "duplicate node attribute");
		raw_init(&r, node_only[i], 1);
		raw_attr(&r, DV_A_NODE, "n1", 2);
		assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
		assert_string_equal(why, "malformed node attribute");
	}

	/* the next type is no request yet */
	raw_init(&r, DV_MSG_SOURCE_PORTS + 1, 1);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
	assert_string_equal(why, "unknown request type");
}

static void test_rank_range(void **state)
{
	static const uint32_t bad[] = {0, 255, 256, UINT32_MAX};
	struct dv_request req;
	const char *why;
	struct raw r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_init(&r, DV_MSG_STANDBY, 1);
		raw_addr4(&r, 10, 1, 1, 5);
		raw_u32(&r, DV_A_RANK, bad[i]);
		why = NULL;
		assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
		assert_non_null(why);
		assert_non_null(strstr(why, "rank"));
	}
	raw_init(&r, DV_MSG_STANDBY, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_u32(&r, DV_A_RANK, 254);
	assert_int_equal(raw_request(&r, &req, &why), 0);
	assert_int_equal(req.rank, 254);
}

static void test_kind_range(void **state)
{
	static const uint32_t bad[] = {0, 4, 100};
	struct dv_request req;
	const char *why;
	struct raw r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_init(&r, DV_MSG_ACTIVATE, 1);
		raw_addr4(&r, 10, 1, 1, 5);
		raw_u32(&r, DV_A_KIND, bad[i]);
		why = NULL;
		assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
		assert_non_null(why);
		assert_non_null(strstr(why, "kind"));
	}
	for (uint32_t k = 1; k <= 3; k++) {
		raw_init(&r, DV_MSG_RELEASE, 1);
		raw_addr4(&r, 10, 1, 1, 5);
		raw_u32(&r, DV_A_KIND, k);
		assert_int_equal(raw_request(&r, &req, &why), 0);
		assert_int_equal(req.kind, k);
	}
	/* an operator has no standby */
	raw_init(&r, DV_MSG_STANDBY, 1);
	raw_addr4(&r, 10, 1, 1, 5);
	raw_u32(&r, DV_A_RANK, 1);
	raw_u32(&r, DV_A_KIND, 2);
	assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
}

static void test_not_a_request(void **state)
{
	static const uint16_t types[] = {0,	DV_MSG_SOURCE_PORTS + 1, DV_MSG_RESULT, DV_MSG_EVENT, DV_MSG_RECORD,
					 0xffff};
	struct dv_request req;
	struct dv_reply rep;
	const char *why;
	struct raw r;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		raw_init(&r, types[i], 1);
		raw_addr4(&r, 10, 1, 1, 5);
		raw_u32(&r, DV_A_RESULT, 0);
		raw_u32(&r, DV_A_EVENT, 1);
		if (types[i] != DV_MSG_RESULT && types[i] != DV_MSG_EVENT)
			assert_int_equal(raw_reply(&r, &rep), -EBADMSG);
		raw_init(&r, types[i], 1);
		raw_addr4(&r, 10, 1, 1, 5);
		why = NULL;
		assert_int_equal(raw_request(&r, &req, &why), -EBADMSG);
		assert_non_null(why);
	}
}

static void test_unknown_attrs_ignored(void **state)
{
	struct dv_request req;
	struct dv_reply rep;
	const char *why;
	struct raw r;

	raw_init(&r, DV_MSG_ACTIVATE, 1);
	raw_attr(&r, 999, "future", 7);
	raw_attr(&r, 999, "future", 7); /* unknown ones may repeat */
	raw_addr4(&r, 10, 1, 1, 5);
	raw_attr_len(&r, 1000, 4, NULL, 0);
	assert_int_equal(raw_request(&r, &req, &why), 0);
	assert_true(req.has_addr);

	raw_init(&r, DV_MSG_RESULT, 5);
	raw_attr(&r, 12345, "x", 1);
	raw_u32(&r, DV_A_RESULT, 4);
	assert_int_equal(raw_reply(&r, &rep), 0);
	assert_int_equal(rep.result, 4);
}

static void test_iter_hand_made(void **state)
{
	/* dv_attr_next() stays inside a dv_msg that did not come from
	 * dv_msg_parse() */
	uint8_t bad[6] = {1, 0, 200, 0, 0, 0};
	struct dv_msg m = {.attrs = bad, .attrs_len = sizeof(bad)};
	struct dv_attr_iter it;
	const void *v;
	uint16_t t;
	size_t n;

	dv_attr_iter_init(&it, &m);
	assert_int_equal(dv_attr_next(&it, &t, &v, &n), 0);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(dv_kind_name(DV_KIND_API), "api");
	assert_string_equal(dv_kind_name(DV_KIND_OPERATOR), "operator");
	assert_string_equal(dv_kind_name(DV_KIND_SOCKET), "socket");
	assert_string_equal(dv_result_text(DV_R_HELD), "Address is held elsewhere or reserved");
	assert_string_equal(dv_result_text(-DV_R_HELD), "Address is held elsewhere or reserved");
	assert_string_equal(dv_result_text(99), "Unknown error");
	assert_string_equal(dv_result_brief(DV_R_NORANGE), "in no range");
	assert_string_equal(dv_result_brief(99), "refused by dvipad");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_request_activate),
		cmocka_unit_test(test_request_activate_default_kind),
		cmocka_unit_test(test_request_release),
		cmocka_unit_test(test_request_standby),
		cmocka_unit_test(test_request_status_config_reload),
		cmocka_unit_test(test_reply_result),
		cmocka_unit_test(test_reply_result_minimal),
		cmocka_unit_test(test_reply_event),
		cmocka_unit_test(test_record_fields),
		cmocka_unit_test(test_attr_padding),
		cmocka_unit_test(test_reason_truncated),
		cmocka_unit_test(test_long_string_not_truncated),
		cmocka_unit_test(test_v4mapped_addr),
		cmocka_unit_test(test_msgb_overflow),
		cmocka_unit_test(test_msgb_exact_fit),
		cmocka_unit_test(test_msgb_attr_too_long),
		cmocka_unit_test(test_msgb_bad_input),
		cmocka_unit_test(test_short_header),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_other_version),
		cmocka_unit_test(test_len_mismatch),
		cmocka_unit_test(test_len_too_big),
		cmocka_unit_test(test_attr_len_lt4),
		cmocka_unit_test(test_attr_overrun),
		cmocka_unit_test(test_string_values),
		cmocka_unit_test(test_reason_without_nul),
		cmocka_unit_test(test_reason_too_long),
		cmocka_unit_test(test_u32_size),
		cmocka_unit_test(test_addr_values),
		cmocka_unit_test(test_field_values),
		cmocka_unit_test(test_duplicate_attr),
		cmocka_unit_test(test_missing_attr),
		cmocka_unit_test(test_request_move),
		cmocka_unit_test(test_request_define_and_node_ops),
		cmocka_unit_test(test_rank_range),
		cmocka_unit_test(test_kind_range),
		cmocka_unit_test(test_not_a_request),
		cmocka_unit_test(test_unknown_attrs_ignored),
		cmocka_unit_test(test_iter_hand_made),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
