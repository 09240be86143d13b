/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cluster layer: delivers one totally ordered stream of engine events.
 * Every node submits its local events; every node delivers all events, its
 * own included, in the same order. Backends: solo (CLUSTER NONE: events loop
 * back through a FIFO) and Corosync CPG (cluster_corosync.c).
 */
#pragma once

#include <errno.h>

#include <systemd/sd-event.h>

#include "engine.h"
#include "sync.h"

struct dv_cluster;

struct dv_cluster_ops {
	/* One event in agreed order. The callee applies it to its engine. */
	void (*deliver)(void *ud, const struct dv_event *ev);
	/* The engine state, for a joining node (malloc'ed), and a state to
	 * start from instead of the local one (0 or -errno). */
	int (*snapshot)(void *ud, uint8_t **ret, size_t *ret_len);
	int (*restore)(void *ud, const uint8_t *buf, size_t len);
	/* up: this node is in the group and in sync with it (again): publish
	 * its configuration. !up: the connection to the cluster is lost: drop
	 * every address at once and start over from an empty state. */
	void (*connected)(void *ud, bool up);
	/* This node's question about quorum came back through the stream
	 * (dv_cluster_ask_quorum); answered: as sync.h says. */
	void (*asked)(void *ud, bool answered);
	/* A state exchange with the group started (on) or ended (sync.h). */
	void (*exchanging)(void *ud, bool on);
	/* This node's partition gained or lost quorum. Immediate, not ordered
	 * with the stream: on loss every address goes at once. */
	void (*local_quorum)(void *ud, bool quorate, uint64_t ring);
	/* The ring lease (fence.h) ran out (!held): drop every address at
	 * once; or it holds again. */
	void (*lease)(void *ud, bool held);
	/* A member vanished from the ring (on): nothing new goes up here until
	 * its lease has surely run out (off). */
	void (*takeover_wait)(void *ud, bool on);
};

/* A node of the cluster's configured node list, member or not. */
struct dv_cluster_node {
	dv_nodeid_t id;
	char name[DV_NODE_NAME_MAX]; /* "" if the list gives none */
	struct dv_addr v4, v6;	     /* its first ringN_addr of each family; family 0: none */
};

struct dv_cluster_vtable {
	int (*submit)(struct dv_cluster *c, const struct dv_event *ev);
	void (*free)(struct dv_cluster *c);
	/* Ask the group to put the quorum into the stream again (NULL for
	 * solo): 1 if the question was sent, 0 if not, or -errno. */
	int (*ask_quorum)(struct dv_cluster *c);
	/* The sync protocol's state (NULL for solo): 0, or -ENOTCONN. */
	int (*sync_info)(const struct dv_cluster *c, struct dv_sync_info *ret);
	/* The cluster's node list (NULL for solo): see dv_cluster_nodelist. */
	int (*nodelist)(const struct dv_cluster *c, struct dv_cluster_node *ret, size_t max, size_t *ret_n);
};

struct dv_cluster {
	const struct dv_cluster_vtable *vt;
	const struct dv_cluster_ops *ops;
	void *ud;
	dv_nodeid_t self;
};

/* CLUSTER NONE: node id 1, always a member of its own quorate partition;
 * the membership and quorum events are submitted by the daemon at start. */
int dv_cluster_solo_new(const struct dv_cluster_ops *ops, void *ud, struct dv_cluster **ret);

/* CLUSTER COROSYNC: join CPG group `group`; node id from Corosync (0 until
 * Corosync is first reached: then the engine must be rebuilt for it).
 * Losses are reported through ops->connected and repaired by reconnecting. */
int dv_cluster_corosync_new(sd_event *ev, const char *group, const struct dv_cluster_ops *ops, void *ud,
			    struct dv_cluster **ret);

/* Multicast ev to the cluster (ev->node is set to this node). Solo
 * delivers before returning, except from within a delivery: then once that
 * delivery has returned, in submission order. 0 or -errno. */
static inline int dv_cluster_submit(struct dv_cluster *c, struct dv_event *ev)
{
	ev->node = c->self;
	return c->vt->submit(c, ev);
}

/* What status shows of the state exchange and the digests: 0, or -ENOTCONN
 * (solo, or not connected). */
static inline int dv_cluster_sync_info(const struct dv_cluster *c, struct dv_sync_info *ret)
{
	return c->vt->sync_info ? c->vt->sync_info(c, ret) : -ENOTCONN;
}

/* The configured nodes, up to max, in the list's order: 0, -ENOENT (no
 * node list: solo), or -errno. Addresses as written (numeric only). */
static inline int dv_cluster_nodelist(const struct dv_cluster *c, struct dv_cluster_node *ret, size_t max,
				      size_t *ret_n)
{
	return c->vt->nodelist ? c->vt->nodelist(c, ret, max, ret_n) : -ENOENT;
}

static inline int dv_cluster_ask_quorum(struct dv_cluster *c)
{
	return c->vt->ask_quorum ? c->vt->ask_quorum(c) : 0;
}

static inline struct dv_cluster *dv_cluster_free(struct dv_cluster *c)
{
	if (c)
		c->vt->free(c);
	return NULL;
}
