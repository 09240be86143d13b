/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the parts of the distributed-VIPA module share (OpenBGPD's rde.h):
 *   dist.c        the plan, the table in the kernel, takeover's pins,
 *                 dvipactl targets/conns/quiesce, lo and ARP settings
 *   dist_ports.c  SYSPLEXPORTS: this node's slices of the ports
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
	bool arp_set;
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
};

/* This node holds s's address on lo: it is one of the targets, a member of
 * a quorate partition, and in its group now. */
bool dist_self_is_target(const struct dv_dist *d, const struct dv_dist_env *env, const struct dv_conf_distribute *s);
/* Every node that sends from a SYSPLEXPORTS address has a slice of its
 * ports, and no other node keeps one: ask for or give back this node's. */
void dist_sync_slices(struct dv_dist *d, const struct dv_dist_env *env);
