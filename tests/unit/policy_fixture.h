/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small engine for the tests of the daemon's pure policy modules (gate,
 * observe): node 1 is self, node 2 a peer; both publish the range
 * 10.1.1.0/24 (MOVEABLE NONDISRUPTIVE). Events are applied in stream order
 * with times that advance by 1 ms.
 */
#pragma once

#include <stdint.h>
#include <string.h>

#include "engine.h"

struct fixture {
	struct dv_engine *e;
	struct dv_effects fx; /* effects of the last event */
	uint64_t now;
	struct dv_conf_range range;
};

static inline struct dv_addr fx_addr(const char *s)
{
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

static inline void fx_apply(struct fixture *f, struct dv_event *ev)
{
	ev->time_ms = ++f->now;
	dv_effects_clear(&f->fx);
	assert_int_equal(dv_engine_apply(f->e, ev, &f->fx), 0);
}

static inline void fx_node_config(struct fixture *f, dv_nodeid_t node, const char *name)
{
	struct dv_event ev = {.type = DV_EV_NODE_CONFIG, .node = node};

	snprintf(ev.node_config.name, sizeof(ev.node_config.name), "%s", name);
	ev.node_config.n_ranges = 1;
	ev.node_config.ranges = &f->range;
	fx_apply(f, &ev);
}

static inline void fx_members(struct fixture *f, size_t n, const dv_nodeid_t *nodes)
{
	struct dv_event ev = {.type = DV_EV_MEMBERSHIP, .node = nodes[0]};

	ev.membership.n = n;
	ev.membership.nodes = nodes;
	fx_apply(f, &ev);
}

static inline void fx_quorum(struct fixture *f, bool quorate)
{
	struct dv_event ev = {.type = DV_EV_QUORUM, .node = 1, .quorum.quorate = quorate};

	fx_apply(f, &ev);
}

static inline struct fixture *fx_new(void)
{
	static const dv_nodeid_t both[] = {1, 2};
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->now = 1000000;
	assert_int_equal(dv_prefix_parse("10.1.1.0/24", &f->range.prefix), 0);
	f->e = dv_engine_new(1);
	assert_non_null(f->e);
	fx_members(f, 2, both);
	fx_quorum(f, true);
	fx_node_config(f, 1, "n1");
	fx_node_config(f, 2, "n2");
	return f;
}

static inline void fx_free(struct fixture *f)
{
	dv_effects_free(&f->fx);
	dv_engine_free(f->e);
	free(f);
}

/* A hold (API or SOCKET) or standby request from `node`'s client. */
static inline void fx_claim(struct fixture *f, dv_nodeid_t node, uint64_t client, const char *addr, enum dv_kind kind)
{
	struct dv_event ev = {.type = DV_EV_CLAIM, .node = node};

	ev.claim.client = client;
	ev.claim.seq = 1;
	ev.claim.addr = fx_addr(addr);
	ev.claim.kind = kind;
	fx_apply(f, &ev);
}

static inline void fx_standby(struct fixture *f, dv_nodeid_t node, uint64_t client, const char *addr, unsigned rank)
{
	struct dv_event ev = {.type = DV_EV_STANDBY, .node = node};

	ev.standby.client = client;
	ev.standby.seq = 2;
	ev.standby.addr = fx_addr(addr);
	ev.standby.rank = rank;
	ev.standby.kind = DV_KIND_API;
	fx_apply(f, &ev);
}

static inline void fx_client_gone(struct fixture *f, dv_nodeid_t node, uint64_t client)
{
	struct dv_event ev = {.type = DV_EV_CLIENT_GONE, .node = node, .client_gone.client = client};

	fx_apply(f, &ev);
}
