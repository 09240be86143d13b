/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Distributed VIPAs on this node (DESIGN §5): what the replicated state says
 * this node must do for each VIPADISTRIBUTE, carried out.
 *
 *  - Targets: the nodes DESTIP names (ALL: every node of the cluster's
 *    node list; CLUSTER NONE: this node). A target that is a member of a
 *    quorate partition and has not left the group holds the VIPA on `lo`
 *    (leased and tagged like every dvipa address), with arp_ignore=1 /
 *    arp_announce=2 on the interface so that it never answers ARP for it
 *    (ND never answers for an address on another interface); the previous
 *    values come back when the last one goes.
 *  - Readiness: such a target is ready for a port while it reports a
 *    listener there (DV_AS_READY bits of its ADDR_STATE reports, with its
 *    weight) and is not quiesced there (DV_EV_QUIESCE); any other node is
 *    not ready, at once.
 *  - Every node with the statement loads the `netdev dvipa` table: one
 *    service per (VIPA, port), a chain per configured target, the slots a
 *    pure function of the replicated state (targets sorted by name, their
 *    readiness, a seed derived from the VIPA and port). Only the node that
 *    owns the VIPA has the ingress rules that steer it, so a node that takes
 *    the role over changes those few rules before it announces the address
 *    and finds the slots already there. Other targets are reached with
 *    "fwd ip to <host address>" (the node list's ring address); this node is
 *    served locally.
 *  - Readiness and membership change slot maps only (the pins stay), in the
 *    background (kernel_nft.h); a change of the configuration or of the node
 *    list replaces the table (the pins go).
 *
 * Methods honoured: BASEWLM (weighted Maglev, M the first prime above 1,000
 * per configured target, at most 65,537; each ready target's weight the
 * one it reports from its spare CPU, wlm.h), SERVERWLM (the same, that
 * weight times the listener's accept-queue headroom), ROUNDROBIN (numgen
 * over the ready targets, chosen on the SYN and pinned), WEIGHTEDACTIVE
 * (numgen over slots shared by WEIGHT and, on the distributor, by the open
 * pins it counts every second), HOTSTANDBY (every slot to the ready target
 * of highest rank), and TIMEDAFFINITY with any of them. A target quiesced
 * in the engine (DV_EV_QUIESCE) is not ready for that port on any node.
 *
 * SYSPLEXPORTS: every node that sends from the address (a target holding
 * it on lo, or its distributor) asks the engine for a slice of its ports
 * (DV_EV_PORT_SLICE) and gives it back when it no longer does; programs
 * learn it with SOURCE_PORTS and bind with IP_LOCAL_PORT_RANGE; the
 * distributor sends the replies to another node's slice to that node.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "cluster.h"

struct dv_sockdiag;
#include "conf.h"
#include "control.h"
#include "engine.h"

#define DV_DIST_RR_SLOTS 2520u /* lcm(1..10): numgen over it splits evenly among up to 10 ready targets */
#define DV_DIST_HS_SLOTS 2u    /* HOTSTANDBY: one target, a hash needs two slots */

struct dv_dist;

/* What one sync looks at. */
struct dv_dist_env {
	const struct dv_conf *conf;
	const struct dv_engine *engine;
	const struct dv_cluster *cluster; /* host addresses of members */
	/* This node may have addresses now (its gate is open). */
	bool active;
	/* This node is in its group and quorate as Corosync says now: it may
	 * be a target even while new owners wait (a vanished member's lease,
	 * a state exchange): its address on lo conflicts with no one. */
	bool in_group;
	/* This node distributes a: it owns it and it is (about to be) on
	 * the interface. */
	bool (*owns)(void *ud, const struct dv_addr *a);
	/* a is on this node's interface now (NULL: never). */
	bool (*installed)(void *ud, const struct dv_addr *a);
	/* This node's established connections (NULL: none known). */
	struct dv_sockdiag *sockdiag;
	/* Multicast an event to the cluster (DV_EV_DIST_PINS). */
	void (*submit)(void *ud, struct dv_event *ev);
	void *ud;
};

/*
 * Start: remove what an earlier dvipad may have left (its table, its tagged
 * addresses on lo). ifname: where clients' packets arrive. resync(ud) asks
 * for a dv_dist_sync when a background transaction ended while the state
 * changed. 0 or -errno (logged).
 */
int dv_dist_open(sd_event *ev, const char *ifname, unsigned lease_s, void (*resync)(void *ud), void *ud,
		 struct dv_dist **ret);
/* Make the kernel match env: the table, lo, the ARP settings. Logs what
 * it changes and what fails. */
void dv_dist_sync(struct dv_dist *d, const struct dv_dist_env *env);
/* A DV_EV_DIST_PINS from the stream: a target's connections that the
 * table does not send to it. Loaded as pins into this node's table while
 * it does not distribute their address, so that it has them the moment it
 * takes the role over. */
void dv_dist_pins(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_event *ev);
/* The configuration changed: read the node list again at the next sync
 * (and say again which targets cannot be reached). */
void dv_dist_reconfigured(struct dv_dist *d);
/*
 * NONDISRUPTIVE moves (dist_move.c). The moves table: DV_MOVE_TABLE, for
 * addresses this node owns that are MOVING on other nodes.
 *
 * move_begin: the engine took a from this node to another one and the
 * range keeps connections: if some are established here, a goes to lo,
 * their list to the cluster (DV_EV_MOVING), and true: the caller removes a
 * from the interface as usual. False: nothing to keep.
 * move_taken: this node owns a again (on the interface): MOVING here ends.
 * moving: a DV_EV_MOVING from the stream.
 */
#define DV_MOVE_TABLE "dvipa_moves"
#define DV_MOVE_MAX 256 /* old owners' lists kept; addresses MOVING here */
bool dv_dist_move_begin(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a);
void dv_dist_move_taken(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a);
void dv_dist_moving(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_event *ev);
/* For status: the nodes where a is MOVING and their connections at their
 * last list (up to max); this node's count now (0: not MOVING here). */
size_t dv_dist_moving_nodes(const struct dv_dist *d, const struct dv_addr *a, struct dv_moving *ret, size_t max);
size_t dv_dist_moving_here(const struct dv_dist *d, const struct dv_addr *a);

/* Remove the table and the addresses on lo, restore the ARP settings. */
void dv_dist_stop(struct dv_dist *d);
struct dv_dist *dv_dist_free(struct dv_dist *d);

/* TARGETS: a TARGET record per target and port of each distributed VIPA
 * (a only, if not NULL), in the table this node computes from the
 * replicated state. DV_R_OK, or DV_R_NOTHELD and a reason when a is not
 * distributed here. */
enum dv_result dv_dist_records(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a,
			       struct dv_records *out, char *reason, size_t size);
/* The statement that distributes a, or NULL. */
const struct dv_conf_distribute *dv_dist_find(const struct dv_conf *c, const struct dv_addr *a);
/* The DV_AS_READY and DV_AS_WEIGHT bits this node reports for statement
 * s: the ports with a listener for its address or the wildcard, but for
 * those quiesced here, each with its weight (BASEWLM: spare CPU;
 * SERVERWLM: that by the accept-queue headroom; wlm.h; d NULL: 16, the
 * most). 0 or -errno (sock_diag). */
int dv_dist_report_bits(struct dv_dist *d, struct dv_sockdiag *sd, const struct dv_conf_distribute *s, unsigned *ret);
/* Whether QUIESCE or RESUME of a's port (0: every port) on node ("" or
 * NULL: this one) may go to the cluster (DV_EV_QUIESCE, which every node
 * applies): a is distributed here, port is one of its ports, node one of
 * its targets. DV_R_OK, or a result and a reason. */
enum dv_result dv_dist_quiesce_check(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a,
				     const char *node, uint16_t port, char *reason, size_t size);
/* CONNS: a CONN record per pin of each distributed VIPA this node
 * distributes (a only, if not NULL), read from the kernel's pin maps.
 * DV_R_OK, or a result and a reason. */
enum dv_result dv_dist_conns(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a,
			     struct dv_records *out, char *reason, size_t size);
/* SOURCE_PORTS: the ports of a this node's programs send from (its
 * SYSPLEXPORTS slice) in *ret_lo..*ret_hi: DV_R_OK; DV_R_OK and 0..0 when a
 * is not distributed with SYSPLEXPORTS here (any port will do); else a
 * refusal (not a target or the distributor now: NOTHELD; no slice: LIMIT)
 * and a reason. */
enum dv_result dv_dist_source_ports(struct dv_dist *d, const struct dv_dist_env *env, const struct dv_addr *a,
				    uint16_t *ret_lo, uint16_t *ret_hi, char *reason, size_t size);
