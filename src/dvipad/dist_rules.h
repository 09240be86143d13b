/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The nftables ruleset of distributed VIPAs (DESIGN §5), as text for
 * libnftables; pure: no I/O but the FILE it writes to.
 *
 * One owned table, "netdev dvipa", with a base chain on the distributor's
 * interface. Per distributed VIPA (a "service", named sN in the table):
 *
 *   sN_vcrt   pins, client address . port . VIPA port -> target mark, written
 *             on the client's first packet after the SYN and refreshed by
 *             every packet (z/OS VCRT), for DV_DIST_PIN_TIMEOUT_S,
 *             DV_DIST_PIN_CLOSE_S after the client's FIN or RST (sN_fin:
 *             the connections closing); looked up first, so later table
 *             changes never move a connection. IPv6: a set of key . mark
 *             (nft 1.0.6 cannot write longer map keys from the packet path)
 *   sN_syn    a handshake's pin (key . mark), for DV_DIST_SYN_PIN_S; a
 *             retransmitted SYN whose target has lost its slots chooses
 *             again
 *   sN_up     the marks of the targets with a slot
 *   sN_slots  slot -> target mark: the Maglev table (jhash of client address
 *             . port with an explicit seed), or the choices numgen draws
 *             from (ROUNDROBIN: inc, WEIGHTEDACTIVE: random) on the SYN
 *   sN_aff    TIMEDAFFINITY: client address -> target mark, with timeout
 *   sN_to     target mark -> goto sN_tK, one chain per target: rewrite
 *             MACs and fwd, fwd to a next hop, or accept (served here)
 *
 * Marks are target indexes + 1 (0: none). Slot changes rewrite sN_slots
 * only (dv_dist_rules_write_slots), which keeps the pins.
 *
 * The base chain "ingress" has, on the distributor only, a rule per other
 * node's SYSPLEXPORTS slice (straight to the node), then a jump per
 * service.
 *
 * A second table, "inet dvipa", on every node: a SYN to a distributed
 * address and port that no socket takes here is dropped, not refused
 * (targets_table()).
 */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"
#include "conf.h"

#define DV_DIST_TABLE "dvipa" /* netdev family; inet too: the targets' side */
/*
 * An open connection's pin lasts this long after its client's last packet:
 * longer than TCP's default keepalive time (7,200 s) and a few of its
 * probe intervals (75 s), so that a connection kept up by default
 * keepalives never loses its pin (a probe's answer may come after 7,200 s).
 */
#define DV_DIST_PIN_TIMEOUT_S 7500
/* Once the client sent a FIN or RST: enough for the last ACK and a few
 * retransmissions of the server's FIN (RTO from 200 ms, doubling). */
#define DV_DIST_PIN_CLOSE_S 10
/* A handshake's pin (sN_syn): SYN retransmissions within it keep the
 * target while it has slots (1, 3, 7 s after the first with Linux's
 * defaults); the handshake's ACK pins the connection for good. */
#define DV_DIST_SYN_PIN_S 10
#define DV_DIST_MAX_SERVICES 4096 /* as VIPADISTRIBUTE statements */

enum dv_dist_fwd {
	DV_DIST_FWD_LOCAL = 0, /* the target is this node: accept */
	DV_DIST_FWD_ETHER,     /* same link: rewrite the MACs, fwd to ifname */
	DV_DIST_FWD_NEXTHOP,   /* fwd to a next hop address through ifname (neighbour-resolved) */
};

struct dv_dist_target {
	const char *name; /* node name, for comments */
	enum dv_dist_fwd fwd;
	const char *ifname;  /* ETHER, NEXTHOP */
	uint8_t mac[6];	     /* ETHER: the target's */
	uint8_t src_mac[6];  /* ETHER: ifname's own, so that switches keep learning right */
	struct dv_addr next; /* NEXTHOP: same family as the VIPA */
};

struct dv_dist_service {
	struct dv_addr vipa;
	size_t n_ports;
	const uint16_t *ports;
	enum dv_dist_method method;
	uint32_t seed;		/* jhash seed, replicated: never nft's random default */
	uint32_t affinity_s;	/* TIMEDAFFINITY; 0: none */
	uint32_t pin_timeout_s; /* 0: DV_DIST_PIN_TIMEOUT_S */
	bool distributing;	/* this node owns the VIPA: its base chain steers it */
	size_t n_targets;
	const struct dv_dist_target *targets;
	/* m slots, each a target index or DV_MAGLEV_NONE (left out: the
	 * packet is not steered). Maglev methods and HOTSTANDBY (every slot the
	 * active target) hash into them, m >= 2; ROUNDROBIN and WEIGHTEDACTIVE
	 * draw a slot, m >= 1. */
	uint32_t m;
	const uint32_t *slots;
};

/* SYSPLEXPORTS: another node's slice of a VIPA's ports. Its distributor
 * sends packets to those ports (the replies to that node's outbound
 * connections, TCP or UDP) to that node. */
struct dv_dist_slice {
	struct dv_addr vipa;
	uint16_t lo, hi;
	bool distributing;	      /* this node owns the VIPA */
	struct dv_dist_target target; /* ETHER or NEXTHOP */
};

struct dv_dist_ruleset {
	const char *ifname; /* where clients' packets for the VIPAs arrive */
	size_t n_services;
	const struct dv_dist_service *services;
	size_t n_slices;
	const struct dv_dist_slice *slices;
};

/*
 * The whole table, as "table netdev dvipa { ... }". 0, or -EINVAL for a
 * description nft could not honour (named in the check's order: names,
 * counts, families, slot indexes), or -EIO when f fails.
 */
int dv_dist_rules_write(const struct dv_dist_ruleset *rs, FILE *f);
/* Whether method m picks a new connection's slot by a hash of the client
 * (a computable choice), not by numgen on the SYN. */
bool dv_dist_rules_hashed(enum dv_dist_method m);

/*
 * The commands that replace service i's slot map, for one transaction with
 * any other change: "flush map" then "add element" (nft 1.0.6's add element
 * fails on an existing key). The pins stay.
 */
int dv_dist_rules_write_slots(const struct dv_dist_ruleset *rs, size_t i, FILE *f);

/* The commands that set the base chain's rules to the services with
 * `distributing`, for a node that takes the distributor's role over (or
 * gives it up) with the rest of the table already loaded. */
int dv_dist_rules_write_ingress(const struct dv_dist_ruleset *rs, FILE *f);

/*
 * The commands that change service i's slot map from old (its previous
 * slots, same m) to its slots now: only the slots that changed, deleted and
 * added again (nft 1.0.6 cannot overwrite an element). Re-pointing a third
 * of 65,537 slots this way costs a third of rewriting the map.
 */
int dv_dist_rules_write_slot_delta(const struct dv_dist_ruleset *rs, size_t i, const uint32_t *old, FILE *f);
