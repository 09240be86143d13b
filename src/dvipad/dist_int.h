/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the parts of the distributed-VIPA module share (OpenBGPD's rde.h):
 *   dist.c        the plan, the table in the kernel, takeover's pins,
 *                 dvipactl targets/conns/quiesce, lo and ARP settings
 *   dist_ports.c  SYSPLEXPORTS: this node's slices of the ports
 *   dist_move.c   NONDISRUPTIVE moves: MOVING, the owner's forwarding
 */
#pragma once

#include <net/if.h>

#include "addrset.h"
#include "dist.h"
#include "wlm.h"

/* A target's connections that its table does not send to it, as it sent
 * them (DV_EV_DIST_PINS); loaded: in this node's table. */
struct pin_list {
	dv_nodeid_t node;
	struct dv_addr addr;
	uint16_t port;
	size_t n;
	struct dv_peer_pin *pins; /* sorted */
	bool loaded;
};

/* What this node sent last for a service: its slots then. */
struct pins_sent {
	struct dv_addr addr;
	uint16_t port;
	uint32_t digest;
};

/* This node asked for a slice of addr's ports (want) or gave it back. */
struct slice_ask {
	struct dv_addr addr;
	bool want;
};

/* A SERVERWLM port's weight as this node reports it (wlm.h). */
struct server_port {
	struct dv_addr addr;
	uint16_t port;
	struct dv_wlm_hold hold;
};

/* A WEIGHTEDACTIVE service this node distributes: sN of its table, its
 * targets by mark - 1, and their open pins at the last count. */
struct wa_service {
	size_t i;
	struct dv_addr addr;
	uint16_t port;
	size_t n;
	dv_nodeid_t node[DV_ENGINE_MAX_NODES];
	uint64_t active[DV_ENGINE_MAX_NODES];
};

#define WA_TICK_US 1000000u /* the pins counted again every second */

/* An old owner's connections on a moved address, as it sent them
 * (DV_EV_MOVING); order: when its first list came. */
struct move_entry {
	struct dv_addr addr;
	dv_nodeid_t node;
	uint64_t order;
	size_t n;
	struct dv_peer_pin *pins; /* sorted */
};

/* An address this node lost and still serves (MOVING here): n
 * connections at the last count. */
struct move_here {
	struct dv_addr addr;
	size_t n;
	uint64_t sent_us; /* the list went last then */
	bool changed;	  /* the count changed since */
	unsigned zeros;	  /* polls in a row that found none */
};

/* A peer whose packets go to node. */
struct move_fwd_pin {
	struct dv_peer_pin pin;
	dv_nodeid_t node;
	uint64_t order; /* of its list */
};

/* An address this node owns whose old owners' connections its moves table
 * forwards: the net (latest old owner) and the pins, as loaded. */
struct move_fwd {
	struct dv_addr addr;
	dv_nodeid_t net;
	size_t n;
	struct move_fwd_pin *pins; /* sorted by peer */
};

struct dv_dist {
	sd_event *ev;
	char ifname[IF_NAMESIZE];
	struct dv_knft *nft;
	struct dv_kaddr *lo;
	struct dv_addrset on_lo;
	void (*resync)(void *ud);
	void *ud;

	/* The table as the kernel has it, or will once the transaction in
	 * the background commits: its shape (all but slots and ingress
	 * rules; NULL: no table of ours), each service's slots, and which
	 * services this node steers. */
	char *shape;
	size_t n_services;
	uint32_t **slots;
	uint32_t *m;
	char *ingress;
	bool replacing; /* the background transaction loads the whole table */
	bool dirty;	/* the state changed while it ran: sync when it ends */
	uint64_t bg_t0_us;
	size_t bg_n;

	/* The interface's ARP settings before the first address on lo. */
	bool arp_ignore_set, arp_announce_set;
	char arp_ignore[16], arp_announce[16];

	/* The cluster's configured nodes: every node that may ever be a
	 * target, so that the table's shape stays put while members come
	 * and go (those change slots only, which keeps the pins). */
	struct dv_cluster_node nodes[DV_ENGINE_MAX_NODES];
	size_t n_nodes;
	bool have_nodes;

	/* This node's spare CPU, for the weights it reports. */
	struct dv_wlm cpu;
	bool cpu_failed;	    /* said once */
	struct server_port *server; /* SERVERWLM ports seen */
	size_t n_server;

	/* WEIGHTEDACTIVE: the connections per target, counted while this
	 * node distributes such a service. */
	struct wa_service *wa;
	size_t n_wa;
	sd_event_source *wa_timer;

	/* Takeover keeps flows: the lists received, and what was sent. */
	struct pin_list *lists;
	size_t n_lists;
	struct pins_sent *sent;
	size_t n_sent;
	bool send_due;		 /* the slots changed: tell the others what they miss */
	uint32_t members_digest; /* the membership the lists were sent in (a draw's) */

	/* SYSPLEXPORTS: what this node asked last per address (a slice, or
	 * none), so that it asks once per membership (dist_ports). */
	struct slice_ask *asked;
	size_t n_asked, cap_asked;
	dv_nodeid_t asked_members[DV_ENGINE_MAX_NODES];
	size_t n_asked_members;

	/* NONDISRUPTIVE moves (dist_move.c): the old owners' lists, what this
	 * node serves as an old owner, its moves table (own nft context: the
	 * distribution's may be busy in the background). */
	struct move_entry *moves;
	size_t n_moves;
	uint64_t move_seq;
	struct move_here *here;
	size_t n_here;
	sd_event_source *mv_timer;
	uint64_t mv_poll_us;
	uint32_t mv_members; /* the membership the lists were sent in */
	struct dv_knft *mv_nft;
	char *mv_shape; /* the table as loaded; NULL: none */
	struct move_fwd *fwd;
	size_t n_fwd;
	struct {
		dv_nodeid_t id;
		uint8_t mac[6];
	} mv_nodes[DV_ENGINE_MAX_NODES]; /* their chains forward to their MACs */
	size_t n_mv_nodes;
	struct dv_addrset mv_here_set; /* in its here4 set */
};

/* dv_peer_pins by address, then port (qsort, bsearch). */
int dist_peer_pin_cmp(const void *x, const void *y);

/* The node list, read again when a member is not in it. */
void dist_refresh_nodes(struct dv_dist *d, const struct dv_dist_env *env);

/* a on lo (tagged, with the lease), or off it; the interface's ARP
 * settings for what is on lo (targets: distributed VIPAs are; addresses
 * MOVING here count by themselves). */
int dist_lo_add(struct dv_dist *d, const struct dv_addr *a);
void dist_lo_del(struct dv_dist *d, const struct dv_addr *a);
void dist_arp_settings(struct dv_dist *d, bool targets);

/* dist_move.c: the lists against the membership, the connections this
 * node still serves, the forwarding (every sync); everything removed. */
void dist_move_sync(struct dv_dist *d, const struct dv_dist_env *env);
void dist_move_stop(struct dv_dist *d);
/* Whether this node routes connections of a to an old owner; a CONN record
 * for each (a NULL: of every address), port 0 (any), state "moving",
 * target the old owner. 0, or -EPIPE (the reply's buffer). */
bool dist_move_routes(const struct dv_dist *d, const struct dv_addr *a);
int dist_move_conns(const struct dv_dist *d, const struct dv_addr *a, struct dv_records *out);

/* This node holds s's address on lo: it is one of the targets, a member of
 * a quorate partition, and in its group now. */
bool dist_self_is_target(const struct dv_dist *d, const struct dv_dist_env *env, const struct dv_conf_distribute *s);
/* Every node that sends from a SYSPLEXPORTS address has a slice of its
 * ports, and no other node keeps one: ask for or give back this node's. */
void dist_sync_slices(struct dv_dist *d, const struct dv_dist_env *env);
