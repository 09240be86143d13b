/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cluster wire format (wire.h): every event type survives a round
 * trip, at its largest too, and the decoder refuses every malformed
 * encoding without reading a byte outside the buffer: truncations at every
 * offset, wrong magic, version, type or length, bad address families,
 * prefixes with host bits, enumerations out of range, counts beyond the
 * engine's limits or beyond the bytes, broken strings, trailing bytes.
 *
 * Buffers handed to the decoder are heap copies of exactly their length, so
 * that AddressSanitizer sees any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "wire.h"

/* Offsets in every encoding. */
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_TYPE 6
#define OFF_LENGTH 8
#define OFF_NODE 12
#define OFF_TIME 16
#define OFF_BODY 24

static struct dv_addr A(const char *s) {
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

static struct dv_prefix
P(const char *s) {
	struct dv_prefix p;

	assert_int_equal(dv_prefix_parse(s, &p), 0);
	return p;
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Decode a heap copy of exactly len bytes. */
static int decode_copy(const uint8_t *buf, size_t len, struct dv_event *ev, void **storage)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	assert_non_null(copy);
	if (len)
		memcpy(copy, buf, len);
	r = dv_event_decode(copy, len, ev, storage);
	free(copy);
	return r;
}

static void expect_bad(const uint8_t *buf, size_t len)
{
	struct dv_event ev;
	void *storage = (void *)1;

	assert_int_equal(decode_copy(buf, len, &ev, &storage), -EBADMSG);
	assert_null(storage);
	assert_int_equal(ev.type, 0);
}

static void range_equal(const struct dv_conf_range *a, const struct dv_conf_range *b)
{
	assert_int_equal(a->prefix.addr.family, b->prefix.addr.family);
	assert_true(dv_addr_eq(&a->prefix.addr, &b->prefix.addr));
	assert_int_equal(a->prefix.len, b->prefix.len);
	assert_int_equal(a->policy, b->policy);
	assert_int_equal(a->deleted, b->deleted);
	assert_int_equal(a->bindwatch, b->bindwatch);
	assert_int_equal(a->sourcevipa, b->sourcevipa);
	assert_int_equal(a->line, b->line);
	/* allow lists are local and never sent */
	assert_int_equal(b->n_users, 0);
	assert_int_equal(b->n_groups, 0);
	assert_null(b->users);
	assert_null(b->uids);
	assert_null(b->groups);
	assert_null(b->gids);
}

static void define_equal(const struct dv_conf_define *a, const struct dv_conf_define *b)
{
	assert_true(dv_addr_eq(&a->addr, &b->addr));
	assert_int_equal(a->plen, b->plen);
	assert_int_equal(a->rank, b->rank);
	assert_int_equal(a->moveable, b->moveable);
	assert_int_equal(a->trackport, b->trackport);
	assert_int_equal(a->line, b->line);
}

static void event_equal(const struct dv_event *a, const struct dv_event *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->node, b->node);
	assert_int_equal(a->time_ms, b->time_ms);
	switch (a->type) {
	case DV_EV_NODE_CONFIG:
		assert_string_equal(a->node_config.name, b->node_config.name);
		assert_memory_equal(a->node_config.mac, b->node_config.mac, 6);
		assert_int_equal(a->node_config.n_ranges, b->node_config.n_ranges);
		assert_int_equal(a->node_config.n_defines, b->node_config.n_defines);
		for (size_t i = 0; i < a->node_config.n_ranges; i++)
			range_equal(&a->node_config.ranges[i], &b->node_config.ranges[i]);
		for (size_t i = 0; i < a->node_config.n_defines; i++)
			define_equal(&a->node_config.defines[i], &b->node_config.defines[i]);
		break;
	case DV_EV_CLAIM:
	case DV_EV_RELEASE:
		assert_int_equal(a->claim.client, b->claim.client);
		assert_int_equal(a->claim.seq, b->claim.seq);
		assert_true(dv_addr_eq(&a->claim.addr, &b->claim.addr));
		assert_int_equal(a->claim.kind, b->claim.kind);
		assert_int_equal(a->claim.uid, b->claim.uid);
		assert_int_equal(a->claim.source_use, b->claim.source_use);
		break;
	case DV_EV_STANDBY:
		assert_int_equal(a->standby.client, b->standby.client);
		assert_int_equal(a->standby.seq, b->standby.seq);
		assert_true(dv_addr_eq(&a->standby.addr, &b->standby.addr));
		assert_int_equal(a->standby.rank, b->standby.rank);
		assert_int_equal(a->standby.kind, b->standby.kind);
		assert_int_equal(a->standby.uid, b->standby.uid);
		break;
	case DV_EV_CLIENT_GONE:
		assert_int_equal(a->client_gone.client, b->client_gone.client);
		break;
	case DV_EV_ADDR_STATE:
		assert_true(dv_addr_eq(&a->addr_state.addr, &b->addr_state.addr));
		assert_int_equal(a->addr_state.flags, b->addr_state.flags);
		break;
	case DV_EV_MEMBERSHIP:
		assert_int_equal(a->membership.n, b->membership.n);
		for (size_t i = 0; i < a->membership.n; i++)
			assert_int_equal(a->membership.nodes[i], b->membership.nodes[i]);
		break;
	case DV_EV_QUORUM:
		assert_int_equal(a->quorum.quorate, b->quorum.quorate);
		break;
	case DV_EV_MOVE:
		assert_int_equal(a->move.client, b->move.client);
		assert_int_equal(a->move.seq, b->move.seq);
		assert_true(dv_addr_eq(&a->move.addr, &b->move.addr));
		assert_int_equal(a->move.to, b->move.to);
		assert_int_equal(a->move.uid, b->move.uid);
		break;
	case DV_EV_DEFINE_STATE:
		assert_int_equal(a->define_state.client, b->define_state.client);
		assert_int_equal(a->define_state.seq, b->define_state.seq);
		assert_true(dv_addr_eq(&a->define_state.addr, &b->define_state.addr));
		assert_int_equal(a->define_state.target, b->define_state.target);
		assert_int_equal(a->define_state.active, b->define_state.active);
		break;
	case DV_EV_NODE_ADMIN:
		assert_int_equal(a->node_admin.client, b->node_admin.client);
		assert_int_equal(a->node_admin.seq, b->node_admin.seq);
		assert_int_equal(a->node_admin.target, b->node_admin.target);
		assert_int_equal(a->node_admin.joined, b->node_admin.joined);
		break;
	case DV_EV_DIST_PINS:
		assert_true(dv_addr_eq(&a->dist_pins.addr, &b->dist_pins.addr));
		assert_int_equal(a->dist_pins.port, b->dist_pins.port);
		assert_int_equal(a->dist_pins.n, b->dist_pins.n);
		for (size_t i = 0; i < a->dist_pins.n; i++) {
			assert_true(dv_addr_eq(&a->dist_pins.pins[i].addr, &b->dist_pins.pins[i].addr));
			assert_int_equal(a->dist_pins.pins[i].port, b->dist_pins.pins[i].port);
		}
		break;
	case DV_EV_MOVING:
		assert_true(dv_addr_eq(&a->moving.addr, &b->moving.addr));
		assert_int_equal(a->moving.n, b->moving.n);
		for (size_t i = 0; i < a->moving.n; i++) {
			assert_true(dv_addr_eq(&a->moving.pins[i].addr, &b->moving.pins[i].addr));
			assert_int_equal(a->moving.pins[i].port, b->moving.pins[i].port);
		}
		break;
	case DV_EV_PORT_SLICE:
		assert_true(dv_addr_eq(&a->port_slice.addr, &b->port_slice.addr));
		assert_int_equal(a->port_slice.blocks, b->port_slice.blocks);
		break;
	case DV_EV_QUIESCE:
		assert_int_equal(a->quiesce.client, b->quiesce.client);
		assert_int_equal(a->quiesce.seq, b->quiesce.seq);
		assert_true(dv_addr_eq(&a->quiesce.addr, &b->quiesce.addr));
		assert_int_equal(a->quiesce.target, b->quiesce.target);
		assert_int_equal(a->quiesce.port, b->quiesce.port);
		assert_int_equal(a->quiesce.on, b->quiesce.on);
		break;
	}
}

/*
 * Encode ev, decode it, compare, encode again (same bytes: the encoding is
 * canonical). Truncations and a trailing byte are refused; with
 * every_offset at every offset, else at a sample of them; truncations with
 * the header's length patched to match are refused too (the body parser,
 * not only the length check, must notice). Returns the encoded size.
 */
static size_t roundtrip(const struct dv_event *ev, bool every_offset)
{
	struct dv_event got;
	void *storage = NULL;
	uint8_t *buf = NULL, *again = NULL, *cut;
	size_t len = 0, len2 = 0;

	assert_int_equal(dv_event_encode(ev, &buf, &len), 0);
	assert_true(len >= OFF_BODY && len <= DV_WIRE_MAX);
	assert_int_equal(decode_copy(buf, len, &got, &storage), 0);
	event_equal(ev, &got);
	assert_int_equal(dv_event_encode(&got, &again, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	free(again);
	free(storage);

	cut = malloc(len + 1);
	assert_non_null(cut);
	for (size_t k = 0; k < len; k++) {
		/* large encodings: the edges and a sample in between */
		if (!every_offset && k > 64 && len - k > 64 && k % 997)
			continue;
		expect_bad(buf, k);
		if (k < OFF_LENGTH + 4)
			continue;
		memcpy(cut, buf, k);
		put32(cut + OFF_LENGTH, (uint32_t)k);
		expect_bad(cut, k);
	}
	/* one byte more, with or without the length saying so */
	memcpy(cut, buf, len);
	cut[len] = 0;
	expect_bad(cut, len + 1);
	put32(cut + OFF_LENGTH, (uint32_t)len + 1);
	expect_bad(cut, len + 1);
	free(cut);
	free(buf);
	return len;
}

/* ---- round trips ---- */

static void test_crc32(void **state)
{
	(void)state;
	assert_int_equal(dv_crc32("123456789", 9), 0xcbf43926u);
	assert_int_equal(dv_crc32("", 0), 0);
}

static void test_roundtrip_node_config(void **state)
{
	char *users[] = {"alice"};
	uid_t uids[] = {1000};
	struct dv_conf_range ranges[] = {
		{.prefix = P("10.1.1.0/24"), .policy = DV_POLICY_NONDISRUPTIVE, .line = 1},
		{.prefix = P("10.2.2.0/24"), .policy = DV_POLICY_DISRUPTIVE, .deleted = true, .line = 2},
		{.prefix = P("10.3.3.0/24"), .policy = DV_POLICY_UNIQUE, .bindwatch = true, .line = 3},
		{.prefix = P("fd00:1::/64"), .sourcevipa = true, .bindwatch = true, .deleted = true, .line = 4},
		{.prefix = P("0.0.0.0/0"), .line = 0xffffffffu},
		{.prefix = P("::/0"), .n_users = 1, .users = users, .uids = uids, .line = 6},
		{.prefix = P("fd00:2::1/128"), .line = 7},
	};
	struct dv_conf_define defines[] = {
		{.addr = A("10.9.9.1"), .plen = 24, .rank = 255, .moveable = DV_MOVE_IMMEDIATE, .line = 8},
		{.addr = A("10.9.9.2"),
		 .plen = 32,
		 .rank = 1,
		 .moveable = DV_MOVE_WHENIDLE,
		 .trackport = 80,
		 .line = 9},
		{.addr = A("fd00:9::1"), .plen = 128, .rank = 254, .moveable = DV_MOVE_NONE, .trackport = 65535},
		{.addr = A("fd00:9::2"), .plen = 0, .rank = 100},
	};
	struct dv_event ev = {.type = DV_EV_NODE_CONFIG, .node = 3, .time_ms = 1234567890123ull};

	(void)state;
	snprintf(ev.node_config.name, sizeof(ev.node_config.name), "node-three.example");
	memcpy(ev.node_config.mac, (const uint8_t[6]){0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}, 6);
	ev.node_config.n_ranges = sizeof(ranges) / sizeof(ranges[0]);
	ev.node_config.ranges = ranges;
	ev.node_config.n_defines = sizeof(defines) / sizeof(defines[0]);
	ev.node_config.defines = defines;
	roundtrip(&ev, true);

	/* nothing at all, and an empty name */
	ev = (struct dv_event){.type = DV_EV_NODE_CONFIG, .node = 1};
	assert_int_equal(roundtrip(&ev, true), OFF_BODY + 3 + 6 + 4 + 4);
}

static void test_roundtrip_node_config_max(void **state)
{
	struct dv_conf_range *ranges = calloc(DV_CONF_MAX_STATEMENTS, sizeof(*ranges));
	struct dv_conf_define *defines = calloc(DV_CONF_MAX_STATEMENTS, sizeof(*defines));
	struct dv_event ev = {.type = DV_EV_NODE_CONFIG, .node = UINT32_MAX, .time_ms = UINT64_MAX};
	size_t len;

	(void)state;
	assert_non_null(ranges);
	assert_non_null(defines);
	for (unsigned i = 0; i < DV_CONF_MAX_STATEMENTS; i++) {
		struct dv_addr a = A("fd00::");

		a.bytes[14] = (uint8_t)(i >> 8);
		a.bytes[15] = (uint8_t)i;
		assert_int_equal(dv_prefix_make(&a, 128, &ranges[i].prefix), 0);
		ranges[i].policy = (enum dv_range_policy)(i % 3);
		ranges[i].deleted = ranges[i].bindwatch = ranges[i].sourcevipa = true;
		ranges[i].line = UINT32_MAX - i;
		defines[i].addr = a;
		defines[i].plen = 128;
		defines[i].rank = 1 + i % 255;
		defines[i].moveable = (enum dv_moveable)(i % 3);
		defines[i].trackport = (uint16_t)(65535 - i);
		defines[i].line = i;
	}
	memset(ev.node_config.name, 'x', sizeof(ev.node_config.name) - 1);
	ev.node_config.n_ranges = DV_CONF_MAX_STATEMENTS;
	ev.node_config.ranges = ranges;
	ev.node_config.n_defines = DV_CONF_MAX_STATEMENTS;
	ev.node_config.defines = defines;
	/* the largest event fits, with room to spare */
	len = roundtrip(&ev, false);
	assert_int_equal(len, OFF_BODY + 2 + DV_NODE_NAME_MAX + 6 + 4 + DV_CONF_MAX_STATEMENTS * (17 + 7) + 4 +
				      DV_CONF_MAX_STATEMENTS * (17 + 9));
	assert_true(len < DV_WIRE_MAX / 4);

	/* one more of either is refused */
	ev.node_config.n_ranges = DV_CONF_MAX_STATEMENTS + 1;
	{
		uint8_t *buf = NULL;
		size_t n = 0;

		assert_int_equal(dv_event_encode(&ev, &buf, &n), -EINVAL);
		ev.node_config.n_ranges = DV_CONF_MAX_STATEMENTS;
		ev.node_config.n_defines = DV_CONF_MAX_STATEMENTS + 1;
		assert_int_equal(dv_event_encode(&ev, &buf, &n), -EINVAL);
		assert_null(buf);
	}
	free(ranges);
	free(defines);
}

static void test_roundtrip_requests(void **state)
{
	static const enum dv_kind kinds[] = {DV_KIND_API, DV_KIND_OPERATOR, DV_KIND_SOCKET};
	static const char *const addrs[] = {"10.1.1.5", "255.255.255.255", "::", "fd00:1::ffff", "::ffff:1.2.3.4"};

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		for (size_t i = 0; i < 5; i++) {
			struct dv_event ev = {.type = DV_EV_CLAIM, .node = 1 + (dv_nodeid_t)i, .time_ms = 42 + i};

			ev.claim.client = i == 0 ? 0 : UINT64_MAX - i;
			ev.claim.seq = i == 1 ? UINT32_MAX : (uint32_t)i;
			ev.claim.addr = A(addrs[i]);
			ev.claim.kind = kinds[k];
			ev.claim.uid = i == 2 ? (uid_t)-1 : 1000;
			roundtrip(&ev, true);
			ev.claim.source_use = true;
			roundtrip(&ev, true);
			/* a release has no source use: not sent */
			ev.type = DV_EV_RELEASE;
			ev.claim.source_use = false;
			roundtrip(&ev, true);

			ev = (struct dv_event){.type = DV_EV_STANDBY, .node = 7, .time_ms = UINT64_MAX};
			ev.standby.client = 99;
			ev.standby.seq = 3;
			ev.standby.addr = A(addrs[i]);
			/* ranks travel unchecked: the engine answers bad ones */
			ev.standby.rank = i == 0 ? 0 : i == 1 ? UINT32_MAX : 254;
			ev.standby.kind = kinds[k];
			ev.standby.uid = 0;
			roundtrip(&ev, true);
		}
	}
	for (size_t i = 0; i < 5; i++) {
		struct dv_event ev = {.type = DV_EV_MOVE, .node = 3, .time_ms = 7 + i};

		ev.move.client = i == 0 ? 0 : UINT64_MAX - i;
		ev.move.seq = (uint32_t)i;
		ev.move.addr = A(addrs[i]);
		ev.move.to = i == 1 ? UINT32_MAX : 1 + (dv_nodeid_t)i;
		ev.move.uid = 0;
		roundtrip(&ev, true);

		ev = (struct dv_event){.type = DV_EV_DEFINE_STATE, .node = 2, .time_ms = i};
		ev.define_state.client = i;
		ev.define_state.seq = UINT32_MAX - (uint32_t)i;
		ev.define_state.addr = A(addrs[i]);
		ev.define_state.target = i == 3 ? UINT32_MAX : 1 + (dv_nodeid_t)i;
		ev.define_state.active = i % 2;
		roundtrip(&ev, true);

		ev = (struct dv_event){.type = DV_EV_NODE_ADMIN, .node = 1 + (dv_nodeid_t)i, .time_ms = i};
		ev.node_admin.client = UINT64_MAX - i;
		ev.node_admin.seq = (uint32_t)i;
		ev.node_admin.target = i == 4 ? UINT32_MAX : 1 + (dv_nodeid_t)i;
		ev.node_admin.joined = i % 2;
		roundtrip(&ev, true);

		/* A target's connections to pin, none to several. */
		struct dv_peer_pin pins[3] = {{A(addrs[i]), 1}, {A(addrs[i]), 40000}, {A(addrs[i]), 65535}};

		ev = (struct dv_event){.type = DV_EV_DIST_PINS, .node = 1 + (dv_nodeid_t)i, .time_ms = i};
		ev.dist_pins.addr = A(addrs[i]);
		ev.dist_pins.port = i == 0 ? 1 : 8080;
		ev.dist_pins.n = i % 4;
		ev.dist_pins.pins = ev.dist_pins.n ? pins : NULL;
		roundtrip(&ev, true);

		/* A moved VIPA's old owner's connections, none (the end) to
		 * several. */
		ev = (struct dv_event){.type = DV_EV_MOVING, .node = 1 + (dv_nodeid_t)i, .time_ms = i};
		ev.moving.addr = A(addrs[i]);
		ev.moving.n = (i + 1) % 4;
		ev.moving.pins = ev.moving.n ? pins : NULL;
		roundtrip(&ev, true);

		ev = (struct dv_event){.type = DV_EV_PORT_SLICE, .node = 1 + (dv_nodeid_t)i, .time_ms = i};
		ev.port_slice.addr = A(addrs[i]);
		ev.port_slice.blocks = i == 4 ? DV_SLICE_POOL_BLOCKS : (unsigned)i;
		roundtrip(&ev, true);

		/* quiesce and resume, one port or all */
		ev = (struct dv_event){.type = DV_EV_QUIESCE, .node = 1 + (dv_nodeid_t)i, .time_ms = i};
		ev.quiesce.client = i == 3 ? UINT64_MAX : i;
		ev.quiesce.seq = (uint32_t)i;
		ev.quiesce.addr = A(addrs[i]);
		ev.quiesce.target = i == 4 ? UINT32_MAX : 2 + (dv_nodeid_t)i;
		ev.quiesce.port = i == 0 ? 0 : i == 1 ? 65535 : 8080;
		ev.quiesce.on = i % 2;
		roundtrip(&ev, true);
	}
}

static void test_roundtrip_others(void **state)
{
	dv_nodeid_t ids[DV_ENGINE_MAX_NODES];
	struct dv_event ev;

	(void)state;
	ev = (struct dv_event){.type = DV_EV_CLIENT_GONE, .node = 2, .time_ms = 1};
	ev.client_gone.client = UINT64_MAX;
	assert_int_equal(roundtrip(&ev, true), OFF_BODY + 8);
	ev.client_gone.client = 0;
	roundtrip(&ev, true);

	for (unsigned f = 0; f < 8; f++) {
		ev = (struct dv_event){.type = DV_EV_ADDR_STATE, .node = 2, .time_ms = 5};
		ev.addr_state.addr = A(f % 2 ? "fd00::5" : "10.1.1.5");
		ev.addr_state.flags = f;
		roundtrip(&ev, true);
		/* with distributed ports ready */
		ev.addr_state.flags = f | DV_AS_READY(f % DV_DIST_MAX_PORTS);
		roundtrip(&ev, true);
	}
	ev.addr_state.flags = DV_AS_READY_ALL;
	roundtrip(&ev, true);
	/* with the ports' weights, 1..16 each */
	for (unsigned w = 1; w <= DV_AS_WEIGHT_MAX; w++) {
		ev.addr_state.flags = DV_AS_READY_ALL;
		for (size_t i = 0; i < DV_DIST_MAX_PORTS; i++)
			ev.addr_state.flags |= DV_AS_WEIGHT(i, (w + i * 5 - 1) % DV_AS_WEIGHT_MAX + 1);
		roundtrip(&ev, true);
		for (size_t i = 0; i < DV_DIST_MAX_PORTS; i++)
			assert_int_equal(dv_as_weight(ev.addr_state.flags, i), (w + i * 5 - 1) % DV_AS_WEIGHT_MAX + 1);
	}

	/* membership: none, one, the most; node 0 as sender is fine here */
	ev = (struct dv_event){.type = DV_EV_MEMBERSHIP, .node = 0, .time_ms = 9};
	assert_int_equal(roundtrip(&ev, true), OFF_BODY + 4);
	for (size_t i = 0; i < DV_ENGINE_MAX_NODES; i++)
		ids[i] = (dv_nodeid_t)(UINT32_MAX - i);
	ev.membership.nodes = ids;
	ev.membership.n = 1;
	roundtrip(&ev, true);
	ev.membership.n = DV_ENGINE_MAX_NODES;
	ev.node = 4;
	assert_int_equal(roundtrip(&ev, true), OFF_BODY + 4 + 4 * DV_ENGINE_MAX_NODES);
	/* duplicates are the engine's to merge */
	ids[1] = ids[0];
	roundtrip(&ev, true);

	ev = (struct dv_event){.type = DV_EV_QUORUM, .node = 0, .time_ms = 0};
	assert_int_equal(roundtrip(&ev, true), OFF_BODY + 1);
	ev.quorum.quorate = true;
	ev.node = 3;
	roundtrip(&ev, true);
}

/* Decoded events are accepted by the engine as they are. */
static void test_decoded_applies(void **state)
{
	struct dv_conf_range range = {.prefix = P("10.1.1.0/24")};
	dv_nodeid_t ids[] = {1, 2};
	struct dv_event evs[6] = {
		{.type = DV_EV_MEMBERSHIP, .membership = {.n = 2, .nodes = ids}},
		{.type = DV_EV_QUORUM, .quorum = {.quorate = true}},
		{.type = DV_EV_NODE_CONFIG, .node = 1, .node_config = {.name = "n1", .n_ranges = 1, .ranges = &range}},
		{.type = DV_EV_CLAIM, .node = 1, .claim = {.client = 7, .addr = A("10.1.1.5"), .kind = DV_KIND_API}},
		{.type = DV_EV_ADDR_STATE, .node = 1, .addr_state = {.addr = A("10.1.1.5"), .flags = DV_AS_BOUND}},
		{.type = DV_EV_CLIENT_GONE, .node = 1, .client_gone = {.client = 7}},
	};
	struct dv_engine *e = dv_engine_new(1);
	struct dv_vipa_info v;
	struct dv_addr a = A("10.1.1.5");

	(void)state;
	assert_non_null(e);
	for (size_t i = 0; i < 6; i++) {
		struct dv_event got;
		void *storage;
		uint8_t *buf;
		size_t len;

		assert_int_equal(dv_event_encode(&evs[i], &buf, &len), 0);
		assert_int_equal(dv_event_decode(buf, len, &got, &storage), 0);
		free(buf);
		assert_int_equal(dv_engine_apply(e, &got, NULL), 0);
		free(storage);
		if (i == 3) {
			assert_int_equal(dv_engine_lookup(e, &a, &v), 0);
			assert_int_equal(v.owner, 1);
		}
	}
	assert_string_equal(dv_engine_node_name(e, 1), "n1");
	assert_int_equal(dv_engine_lookup(e, &a, &v), -ENOENT);
	dv_engine_free(e);
}

/* ---- malformed encodings ---- */

/* A valid encoding of ev in *buf (caller frees). */
static size_t enc(const struct dv_event *ev, uint8_t **buf)
{
	size_t len = 0;

	assert_int_equal(dv_event_encode(ev, buf, &len), 0);
	return len;
}

/* A copy of buf with byte off set to v: refused. */
static void bad_byte(const uint8_t *buf, size_t len, size_t off, uint8_t v)
{
	uint8_t *c = malloc(len);

	assert_non_null(c);
	assert_true(off < len);
	memcpy(c, buf, len);
	c[off] = v;
	expect_bad(c, len);
	free(c);
}

static void bad_u32(const uint8_t *buf, size_t len, size_t off, uint32_t v)
{
	uint8_t *c = malloc(len);

	assert_non_null(c);
	assert_true(off + 4 <= len);
	memcpy(c, buf, len);
	put32(c + off, v);
	expect_bad(c, len);
	free(c);
}

static void test_bad_header(void **state)
{
	struct dv_event ev = {.type = DV_EV_CLIENT_GONE, .node = 2};
	struct dv_event got;
	void *storage;
	uint8_t *buf, *big;
	size_t len;

	(void)state;
	ev.client_gone.client = 5;
	len = enc(&ev, &buf);
	bad_byte(buf, len, OFF_MAGIC, 'X');
	bad_byte(buf, len, OFF_MAGIC + 3, 0);
	bad_byte(buf, len, OFF_VERSION, 0);
	bad_byte(buf, len, OFF_VERSION, DV_WIRE_VERSION + 1);
	bad_byte(buf, len, OFF_VERSION + 1, 1);
	/* unknown types, and a type whose body does not match */
	bad_byte(buf, len, OFF_TYPE, 0);
	bad_byte(buf, len, OFF_TYPE, DV_EV_LAST + 1);
	bad_byte(buf, len, OFF_TYPE + 1, 1);
	bad_byte(buf, len, OFF_TYPE, DV_EV_QUORUM);
	bad_byte(buf, len, OFF_TYPE, DV_EV_ADDR_STATE);
	/* the length must be the datagram's */
	bad_u32(buf, len, OFF_LENGTH, (uint32_t)len - 1);
	bad_u32(buf, len, OFF_LENGTH, (uint32_t)len + 1);
	bad_u32(buf, len, OFF_LENGTH, 0);
	bad_u32(buf, len, OFF_LENGTH, UINT32_MAX);
	/* a request needs its node */
	bad_u32(buf, len, OFF_NODE, 0);
	/* NULL, and arguments */
	assert_int_equal(dv_event_decode(NULL, 0, &got, &storage), -EBADMSG);
	assert_int_equal(dv_event_decode(buf, len, NULL, &storage), -EINVAL);
	assert_int_equal(dv_event_decode(buf, len, &got, NULL), -EINVAL);
	/* larger than any event */
	big = calloc(1, DV_WIRE_MAX + 1);
	assert_non_null(big);
	memcpy(big, buf, len);
	put32(big + OFF_LENGTH, DV_WIRE_MAX + 1);
	expect_bad(big, DV_WIRE_MAX + 1);
	free(big);
	free(buf);
}

static void test_bad_requests(void **state)
{
	struct dv_event ev = {.type = DV_EV_CLAIM, .node = 2};
	uint8_t *buf;
	size_t len;
	/* claim body: client 24, seq 32, family 36, bytes 37..40, kind 41, uid 42 */
	const size_t fam = OFF_BODY + 12, kind = fam + 5;

	(void)state;
	ev.claim.client = 1;
	ev.claim.addr = A("10.1.1.5");
	ev.claim.kind = DV_KIND_API;
	len = enc(&ev, &buf);
	assert_int_equal(len, kind + 1 + 4);
	bad_byte(buf, len, fam, 0);
	bad_byte(buf, len, fam, AF_INET);
	bad_byte(buf, len, fam, 5);
	bad_byte(buf, len, fam, DV_WIRE_INET6); /* 16 bytes do not fit */
	bad_byte(buf, len, kind, 0);
	bad_byte(buf, len, kind, DV_KIND_SOCKET + 1);
	bad_byte(buf, len, kind, 0xff);
	free(buf);

	ev.type = DV_EV_RELEASE;
	ev.claim.addr = A("fd00::1");
	len = enc(&ev, &buf);
	bad_byte(buf, len, fam, DV_WIRE_INET); /* 12 bytes too many */
	bad_byte(buf, len, kind + 12, 0);
	free(buf);

	ev = (struct dv_event){.type = DV_EV_STANDBY, .node = 2};
	ev.standby.addr = A("10.1.1.5");
	ev.standby.kind = DV_KIND_SOCKET;
	len = enc(&ev, &buf);
	bad_byte(buf, len, fam + 5 + 4, 0);
	bad_byte(buf, len, fam + 5 + 4, 4);
	free(buf);

	ev = (struct dv_event){.type = DV_EV_ADDR_STATE, .node = 2};
	ev.addr_state.addr = A("10.1.1.5");
	ev.addr_state.flags = DV_AS_BOUND;
	len = enc(&ev, &buf);
	/* no fifth port: neither its readiness nor its weight */
	bad_u32(buf, len, OFF_BODY + 5, 1u << (DV_AS_WEIGHT_SHIFT + 4 * DV_DIST_MAX_PORTS));
	bad_u32(buf, len, OFF_BODY + 5, 0x80000000u);
	bad_byte(buf, len, OFF_BODY, 0);
	free(buf);

	ev = (struct dv_event){.type = DV_EV_QUORUM};
	len = enc(&ev, &buf);
	bad_byte(buf, len, OFF_BODY, 2);
	bad_byte(buf, len, OFF_BODY, 0xff);
	free(buf);
}

/* A move names its target node, and like every request its origin. */
static void test_bad_move(void **state)
{
	struct dv_event ev = {.type = DV_EV_MOVE, .node = 2};
	uint8_t *buf = NULL;
	size_t len;
	/* move body: client, seq, family + 4 bytes, to, uid */
	const size_t fam = OFF_BODY + 12, to = fam + 5;

	(void)state;
	ev.move.client = 1;
	ev.move.addr = A("10.1.1.5");
	ev.move.to = 3;
	len = enc(&ev, &buf);
	assert_int_equal(len, to + 4 + 4);
	bad_u32(buf, len, to, 0);
	bad_byte(buf, len, fam, 0);
	bad_byte(buf, len, fam, DV_WIRE_INET6);
	bad_u32(buf, len, OFF_NODE, 0);
	free(buf);
	buf = NULL;
	ev.move.to = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	assert_null(buf);
	ev.move.to = 3;
	ev.node = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	assert_null(buf);

	/* define state: body client, seq, family + 4, target, active */
	ev = (struct dv_event){.type = DV_EV_DEFINE_STATE, .node = 2};
	ev.define_state.addr = A("10.1.1.5");
	ev.define_state.target = 3;
	len = enc(&ev, &buf);
	assert_int_equal(len, to + 4 + 1);
	bad_u32(buf, len, to, 0);
	bad_byte(buf, len, to + 4, 2);
	bad_byte(buf, len, to + 4, 0xff);
	bad_byte(buf, len, fam, 5);
	bad_u32(buf, len, OFF_NODE, 0);
	free(buf);
	buf = NULL;
	ev.define_state.target = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	assert_null(buf);
	ev.define_state.target = 3;
	ev.define_state.addr.family = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	assert_null(buf);

	/* node admin: body client, seq, target, joined */
	ev = (struct dv_event){.type = DV_EV_NODE_ADMIN, .node = 2};
	ev.node_admin.target = 1;
	ev.node_admin.joined = true;
	len = enc(&ev, &buf);
	assert_int_equal(len, OFF_BODY + 12 + 4 + 1);
	bad_u32(buf, len, OFF_BODY + 12, 0);
	bad_byte(buf, len, OFF_BODY + 16, 2);
	bad_u32(buf, len, OFF_NODE, 0);
	free(buf);
	buf = NULL;
	ev.node_admin.target = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	assert_null(buf);

	/* quiesce: body client, seq, addr (5), target, port, on */
	ev = (struct dv_event){.type = DV_EV_QUIESCE, .node = 2};
	ev.quiesce.addr = A("10.1.1.5");
	ev.quiesce.target = 3;
	ev.quiesce.port = 80;
	ev.quiesce.on = true;
	len = enc(&ev, &buf);
	assert_int_equal(len, OFF_BODY + 12 + 5 + 4 + 2 + 1);
	bad_u32(buf, len, OFF_BODY + 17, 0);
	bad_byte(buf, len, OFF_BODY + 23, 2);
	bad_byte(buf, len, OFF_BODY + 12, 5);
	free(buf);
	buf = NULL;
	ev.quiesce.target = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	assert_null(buf);
}

static void test_bad_membership(void **state)
{
	dv_nodeid_t ids[DV_ENGINE_MAX_NODES];
	struct dv_event ev = {.type = DV_EV_MEMBERSHIP, .node = 1};
	uint8_t *buf, *c;
	size_t len;

	(void)state;
	for (size_t i = 0; i < DV_ENGINE_MAX_NODES; i++)
		ids[i] = (dv_nodeid_t)(i + 1);
	ev.membership.n = DV_ENGINE_MAX_NODES;
	ev.membership.nodes = ids;
	len = enc(&ev, &buf);
	/* a node 0, the count one more than the nodes, more than the engine
	 * takes, more than the bytes hold */
	bad_u32(buf, len, OFF_BODY + 4 + 4 * 10, 0);
	bad_u32(buf, len, OFF_BODY, DV_ENGINE_MAX_NODES - 1);
	bad_u32(buf, len, OFF_BODY, DV_ENGINE_MAX_NODES + 1);
	bad_u32(buf, len, OFF_BODY, UINT32_MAX);
	/* 65 nodes in 65 slots: still too many */
	c = calloc(1, len + 4);
	assert_non_null(c);
	memcpy(c, buf, len);
	put32(c + OFF_LENGTH, (uint32_t)len + 4);
	put32(c + OFF_BODY, DV_ENGINE_MAX_NODES + 1);
	put32(c + len, 99);
	expect_bad(c, len + 4);
	free(c);
	free(buf);
	ev.membership.n = 3;
	ids[2] = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.membership.n = DV_ENGINE_MAX_NODES + 1;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
}

static void test_bad_node_config(void **state)
{
	struct dv_conf_range range = {.prefix = P("10.1.1.0/24"), .line = 1};
	struct dv_conf_define def = {.addr = A("10.9.9.1"), .plen = 24, .rank = 255, .line = 2};
	struct dv_event ev = {.type = DV_EV_NODE_CONFIG, .node = 1};
	uint8_t *buf;
	size_t len;
	/* body: name size 24, "n1\0" 26, MAC 29, n_ranges 35, range 39
	 * (family, addr, len, policy, flags, line), n_defines 51, define 55
	 * (family, addr, plen, rank, moveable, trackport, line), end 69 */
	const size_t name = OFF_BODY, nr = name + 2 + 3 + 6, rg = nr + 4, nd = rg + 12, df = nd + 4;

	(void)state;
	snprintf(ev.node_config.name, sizeof(ev.node_config.name), "n1");
	ev.node_config.n_ranges = 1;
	ev.node_config.ranges = &range;
	ev.node_config.n_defines = 1;
	ev.node_config.defines = &def;
	len = enc(&ev, &buf);
	assert_int_equal(len, df + 14);

	/* strings: size 0, beyond the buffer, beyond the field; no NUL where
	 * it ends; a NUL before */
	bad_byte(buf, len, name, 0);
	bad_byte(buf, len, name, 200);
	bad_byte(buf, len, name + 1, 1);
	bad_byte(buf, len, name + 2 + 2, 'x');
	bad_byte(buf, len, name + 2 + 1, 0);
	/* counts: beyond the limit, beyond the bytes, not matching */
	bad_u32(buf, len, nr, DV_CONF_MAX_STATEMENTS + 1);
	bad_u32(buf, len, nr, UINT32_MAX);
	bad_u32(buf, len, nr, 2);
	bad_u32(buf, len, nr, 0);
	bad_u32(buf, len, nd, DV_CONF_MAX_STATEMENTS + 1);
	bad_u32(buf, len, nd, 2);
	bad_u32(buf, len, nd, 0);
	/* ranges: family, prefix length, host bits, policy, flags */
	bad_byte(buf, len, rg, 0);
	bad_byte(buf, len, rg, 7);
	bad_byte(buf, len, rg + 5, 33);
	bad_byte(buf, len, rg + 5, 0xff);
	bad_byte(buf, len, rg + 4, 1);	/* 10.1.1.1/24 */
	bad_byte(buf, len, rg + 5, 16); /* 10.1.1.0/16 */
	bad_byte(buf, len, rg + 6, 3);
	bad_byte(buf, len, rg + 7, 0x08);
	bad_byte(buf, len, rg + 7, 0x80);
	/* defines: family, plen, rank, moveable */
	bad_byte(buf, len, df, 0);
	bad_byte(buf, len, df + 5, 33);
	bad_byte(buf, len, df + 6, 0);
	bad_byte(buf, len, df + 7, 3);
	free(buf);

	/* the same limits hold for IPv6 */
	range.prefix = P("fd00::/64");
	def.addr = A("fd00::1");
	def.plen = 128;
	len = enc(&ev, &buf);
	bad_byte(buf, len, rg + 17, 129);
	bad_byte(buf, len, rg + 16, 1); /* host bit in the last byte */
	bad_byte(buf, len, df + 17 + 12, 129);
	free(buf);

	/* the encoder refuses what the decoder would */
	range.prefix.len = 63;
	range.prefix.addr.bytes[7] = 1;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	range.prefix = P("fd00::/64");
	range.policy = (enum dv_range_policy)3;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	range.policy = DV_POLICY_UNIQUE;
	def.rank = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	def.rank = 256;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	def.rank = 1;
	def.moveable = (enum dv_moveable)3;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	def.moveable = DV_MOVE_NONE;
	def.plen = 129;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	def.plen = 64;
	def.addr.family = AF_UNIX;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	def.addr = A("fd00::1");
	memset(ev.node_config.name, 'x', sizeof(ev.node_config.name)); /* no NUL */
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.node_config.name[0] = '\0';
	ev.node_config.ranges = NULL;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.node_config.ranges = &range;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), 0);
	free(buf);
}

static void test_encode_refusals(void **state)
{
	struct dv_event ev = {.type = DV_EV_CLAIM, .node = 1};
	uint8_t *buf = NULL;
	size_t len = 0;

	(void)state;
	ev.claim.addr = A("10.1.1.5");
	ev.claim.kind = DV_KIND_API;
	assert_int_equal(dv_event_encode(NULL, &buf, &len), -EINVAL);
	assert_int_equal(dv_event_encode(&ev, NULL, &len), -EINVAL);
	ev.node = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.node = 1;
	ev.claim.kind = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.claim.kind = DV_KIND_API;
	ev.claim.addr.family = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.type = DV_EV_STANDBY;
	ev.standby.addr = A("10.1.1.5");
	ev.standby.kind = (enum dv_kind)4;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev = (struct dv_event){.type = DV_EV_ADDR_STATE, .node = 1};
	ev.addr_state.addr = A("10.1.1.5");
	ev.addr_state.flags = 1u << (DV_AS_WEIGHT_SHIFT + 4 * DV_DIST_MAX_PORTS);
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.type = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.type = (enum dv_event_type)(DV_EV_LAST + 1);
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	ev.type = DV_EV_CLIENT_GONE;
	ev.node = 0;
	assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	/* MOVING: a peer of another family than the address, too many
	 * peers, a count without them */
	{
		struct dv_peer_pin pin = {A("2001:db8::1"), 40000};

		ev = (struct dv_event){.type = DV_EV_MOVING, .node = 1};
		ev.moving.addr = A("10.1.1.5");
		ev.moving.n = 1;
		ev.moving.pins = &pin;
		assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
		pin.addr = A("192.0.2.9");
		ev.moving.n = DV_DIST_PINS_MAX + 1;
		assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
		ev.moving.n = 1;
		ev.moving.pins = NULL;
		assert_int_equal(dv_event_encode(&ev, &buf, &len), -EINVAL);
	}
	assert_null(buf);
}

/* Every single-byte change of every encoding either is refused or decodes
 * to something that encodes back to exactly those bytes. */
static void test_mutations(void **state)
{
	struct dv_conf_range range = {.prefix = P("fd00::/64"), .policy = DV_POLICY_UNIQUE, .line = 1};
	struct dv_conf_define def = {.addr = A("10.9.9.1"), .plen = 24, .rank = 200, .line = 2};
	dv_nodeid_t ids[] = {1, 2, 3};
	struct dv_peer_pin peers[] = {{A("192.0.2.100"), 40000}, {A("192.0.2.101"), 1}};
	struct dv_event evs[] = {
		{.type = DV_EV_MOVING, .node = 2, .moving = {.addr = A("192.0.2.130"), .n = 2, .pins = peers}},
		{.type = DV_EV_NODE_CONFIG,
		 .node = 1,
		 .node_config = {.name = "n1", .n_ranges = 1, .ranges = &range, .n_defines = 1, .defines = &def}},
		{.type = DV_EV_CLAIM, .node = 1, .claim = {.client = 7, .addr = A("10.1.1.5"), .kind = DV_KIND_API}},
		{.type = DV_EV_STANDBY,
		 .node = 1,
		 .standby = {.addr = A("fd00::5"), .rank = 3, .kind = DV_KIND_SOCKET}},
		{.type = DV_EV_MEMBERSHIP, .membership = {.n = 3, .nodes = ids}},
		{.type = DV_EV_ADDR_STATE, .node = 1, .addr_state = {.addr = A("10.1.1.5"), .flags = 7}},
		{.type = DV_EV_QUORUM, .quorum = {.quorate = true}},
	};
	static const uint8_t deltas[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
	unsigned refused = 0, accepted = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		uint8_t *buf;
		size_t len = enc(&evs[i], &buf);

		for (size_t k = 0; k < len; k++) {
			for (size_t d = 0; d < sizeof(deltas); d++) {
				struct dv_event got;
				void *storage;
				uint8_t *again;
				size_t len2;

				buf[k] ^= deltas[d];
				if (decode_copy(buf, len, &got, &storage) == 0) {
					assert_int_equal(dv_event_encode(&got, &again, &len2), 0);
					assert_int_equal(len2, len);
					assert_memory_equal(again, buf, len);
					free(again);
					free(storage);
					accepted++;
				} else {
					refused++;
				}
				buf[k] ^= deltas[d];
			}
		}
		free(buf);
	}
	/* both happen: payload bytes are free, framing bytes are not */
	assert_true(accepted > 100);
	assert_true(refused > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32),
		cmocka_unit_test(test_roundtrip_node_config),
		cmocka_unit_test(test_roundtrip_node_config_max),
		cmocka_unit_test(test_roundtrip_requests),
		cmocka_unit_test(test_roundtrip_others),
		cmocka_unit_test(test_decoded_applies),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_bad_move),
		cmocka_unit_test(test_bad_membership),
		cmocka_unit_test(test_bad_node_config),
		cmocka_unit_test(test_encode_refusals),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
