/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What this node sees of the sockets on its addresses, turned into engine
 * events and requests (DESIGN §3 "Holds"):
 *  - a socket hold ends when the last socket bound to its address goes,
 *    except while it is so fresh that its program may not have called
 *    bind() yet (the shim binds only after the grant): then the daemon
 *    looks again when the grace is over;
 *  - a bind to an address of a BINDWATCH range is an activation;
 *  - a define's TRACKPORT listener and its owner's connections (WHENIDLE)
 *    are reported as ADDR_STATE when they change;
 *  - the duplicate-address probe runs before the first activation of an
 *    address by this node only.
 *
 * Pure: the daemon reads sock_diag, the kernel and the clock, and feeds the
 * facts in; tested by test_observe.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addrset.h"
#include "engine.h"

/* How long a fresh socket hold may exist with no socket bound to it. */
#define DV_SOCKET_GRACE_MS 2000
/* How often TRACKPORT listeners and WHENIDLE connections are looked at
 * (sock_diag has no notification for a new listener or connection). */
#define DV_DEFINE_POLL_MS 250

#define DV_OBSERVE_MAX_MACS 256

struct dv_observe {
	struct dv_addrset seen_bound; /* installed addresses a socket was seen bound to */
	struct dv_addrset probed;     /* probed clean or installed since start */
	uint32_t *define_state;	      /* per configured define: REPORTED | DV_AS_* last reported, 0 never */
	size_t n_defines;
	/* Interface MACs of the cluster's nodes, as their configurations
	 * said, kept after they leave (a dead dvipad's addresses linger on
	 * its host until their lease ends); the most recent first. */
	uint8_t macs[DV_OBSERVE_MAX_MACS][6];
	size_t n_macs;
};

void dv_observe_init(struct dv_observe *o);
void dv_observe_clear(struct dv_observe *o);

/* This node's socket hold on a, or NULL. */
const struct dv_hold *dv_observe_socket_hold(const struct dv_engine *e, const struct dv_addr *a);

/* ---- sockets ---- */

enum dv_observe_unbound {
	DV_OBSERVE_NONE = 0, /* no socket hold of this node: nothing to do */
	DV_OBSERVE_END,	     /* end it: submit ADDR_STATE with no flags */
	DV_OBSERVE_GRACE,    /* look again at *ret_at_ms */
};

/* No socket is bound to a now (the last one closed, or none came yet).
 * binding: the program that claimed a through the preload shim may not
 * have called bind() yet (it lives, or it is not known); only then is
 * there a grace. */
enum dv_observe_unbound dv_observe_unbound(struct dv_observe *o, const struct dv_engine *e, const struct dv_addr *a,
					   bool binding, uint64_t now_ms, uint64_t *ret_at_ms);
/* A socket is bound to a. installed: the address is on the interface;
 * bindwatch: a lies in a BINDWATCH range. true: activate a as this node's
 * socket hold (bind watch). */
bool dv_observe_bound(struct dv_observe *o, const struct dv_engine *e, const struct dv_addr *a, bool installed,
		      bool bindwatch);
/* a was installed, or removed (NULL: every address was removed). */
void dv_observe_installed(struct dv_observe *o, const struct dv_addr *a);
void dv_observe_removed(struct dv_observe *o, const struct dv_addr *a);

/* ---- the duplicate-address probe ---- */

/* An address this node has had, or one the cluster knows as active, is
 * known not to belong to a stranger. */
bool dv_observe_needs_probe(const struct dv_observe *o, const struct dv_engine *e, const struct dv_addr *a,
			    unsigned probe_count);
void dv_observe_probed(struct dv_observe *o, const struct dv_addr *a);
/* A cluster node's MAC (from its configuration; zero ignored). */
void dv_observe_cluster_mac(struct dv_observe *o, const uint8_t mac[6]);
/* Whether a probe answered from mac met a cluster node, not a foreign
 * host: no reason to refuse the address (the engine decides). */
bool dv_observe_is_cluster_mac(const struct dv_observe *o, const uint8_t mac[6]);

/* ---- defines ---- */

/* The configuration has n defines now; everything is reported afresh.
 * 0 or -ENOMEM. */
int dv_observe_defines(struct dv_observe *o, size_t n);
/* Report every define again at the next look (the group forgot them). */
void dv_observe_defines_resend(struct dv_observe *o);
/* What was seen of define i at address a: listening (its TRACKPORT has a
 * listener), busy (established connections on it here), ready (DV_AS_READY
 * and DV_AS_WEIGHT bits: the ports of its VIPADISTRIBUTE with a listener
 * here, their weights). true, with
 * the DV_AS_* flags in *ret_flags, if that must be reported. */
bool dv_observe_define(struct dv_observe *o, const struct dv_engine *e, size_t i, const struct dv_addr *a,
		       bool listening, bool busy, unsigned ready, unsigned *ret_flags);
