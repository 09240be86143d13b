/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CLUSTER NONE: the ordered stream of a single node is its own events, in
 * the order they are submitted.
 *
 * Events are queued and delivered by the outermost submit: an event the
 * daemon submits while it handles a delivery (an effect asking for a
 * release, say) is delivered after that delivery returns, in FIFO order,
 * never from inside it. A queued event may outlive the caller's data, so
 * the queue keeps its own copies of the arrays an event points to.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

struct solo_item {
	struct solo_item *next;
	struct dv_event ev;
	void *data; /* the copies ev points to */
};

struct solo {
	struct dv_cluster c; /* first: the vtable gets &c */
	struct solo_item *head, **tail;
	bool draining;
};

static void *memdup_n(const void *p, size_t n, size_t size)
{
	void *q;

	if (n == 0)
		return NULL;
	q = calloc(n, size);
	if (q)
		memcpy(q, p, n * size);
	return q;
}

/* Copy the arrays ev points to into one block it->data. The engine ignores
 * a range's users and groups: their pointers are not kept. */
static int item_copy(struct solo_item *it, const struct dv_event *ev)
{
	struct dv_node_conf *nc = &it->ev.node_config;
	struct dv_conf_range *ranges;
	size_t rsize, dsize;

	it->ev = *ev;
	if (ev->type == DV_EV_MEMBERSHIP) {
		it->data = memdup_n(ev->membership.nodes, ev->membership.n, sizeof(dv_nodeid_t));
		it->ev.membership.nodes = it->data;
		return ev->membership.n && !it->data ? -ENOMEM : 0;
	}
	if (ev->type == DV_EV_DIST_PINS) {
		it->data = memdup_n(ev->dist_pins.pins, ev->dist_pins.n, sizeof(*ev->dist_pins.pins));
		it->ev.dist_pins.pins = it->data;
		return ev->dist_pins.n && !it->data ? -ENOMEM : 0;
	}
	if (ev->type != DV_EV_NODE_CONFIG)
		return 0;
	rsize = nc->n_ranges * sizeof(*nc->ranges);
	dsize = nc->n_defines * sizeof(*nc->defines);
	if (rsize + dsize == 0)
		return 0;
	it->data = malloc(rsize + dsize);
	if (!it->data)
		return -ENOMEM;
	ranges = it->data;
	if (rsize)
		memcpy(ranges, ev->node_config.ranges, rsize);
	if (dsize)
		memcpy((char *)it->data + rsize, ev->node_config.defines, dsize);
	for (size_t i = 0; i < nc->n_ranges; i++) {
		ranges[i].n_users = ranges[i].n_groups = 0;
		ranges[i].users = ranges[i].groups = NULL;
		ranges[i].uids = NULL;
		ranges[i].gids = NULL;
	}
	nc->ranges = nc->n_ranges ? ranges : NULL;
	nc->defines = nc->n_defines ? (const struct dv_conf_define *)((char *)it->data + rsize) : NULL;
	return 0;
}

static struct solo_item *item_free(struct solo_item *it)
{
	if (it) {
		free(it->data);
		free(it);
	}
	return NULL;
}

static void solo_drain(struct solo *s)
{
	s->draining = true;
	while (s->head) {
		struct solo_item *it = s->head;

		s->head = it->next;
		if (!s->head)
			s->tail = &s->head;
		s->c.ops->deliver(s->c.ud, &it->ev);
		item_free(it);
	}
	s->draining = false;
}

static int solo_submit(struct dv_cluster *c, const struct dv_event *ev)
{
	struct solo *s = (struct solo *)c;
	struct solo_item *it = calloc(1, sizeof(*it));

	if (!it)
		return -ENOMEM;
	if (item_copy(it, ev) < 0) {
		item_free(it);
		return -ENOMEM;
	}
	*s->tail = it;
	s->tail = &it->next;
	if (!s->draining)
		solo_drain(s);
	return 0;
}

static void solo_free(struct dv_cluster *c)
{
	struct solo *s = (struct solo *)c;

	while (s->head) {
		struct solo_item *it = s->head;

		s->head = it->next;
		item_free(it);
	}
	free(s);
}

static const struct dv_cluster_vtable solo_vtable = {
	.submit = solo_submit,
	.free = solo_free,
};

int dv_cluster_solo_new(const struct dv_cluster_ops *ops, void *ud, struct dv_cluster **ret)
{
	struct solo *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->c.vt = &solo_vtable;
	s->c.ops = ops;
	s->c.ud = ud;
	s->c.self = 1;
	s->tail = &s->head;
	*ret = &s->c;
	return 0;
}
