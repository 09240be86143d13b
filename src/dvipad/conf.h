/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dvipa.conf: the parsed configuration of one node. See dvipa.conf(5).
 *
 * A configuration is an immutable object: a reload parses a new one aside and
 * swaps it in only when it has no error.
 */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "addr.h"
#include "cleanup.h"

#define DV_NODE_NAME_MAX 64	    /* including the terminating NUL */
#define DV_GROUP_NAME_MAX 128	    /* CPG group names are at most 128 bytes */
#define DV_CONF_MAX_STATEMENTS 4096 /* z/OS V2R3's limit per statement kind */
#define DV_CONF_USER_VIPAS 1024	    /* MAXUSERVIPAS default */
#define DV_CONF_NICE 0		    /* NICE default: the normal priority */
#define DV_CONF_MAX_ALLOW 64	    /* users + groups in one ALLOW list */

enum dv_cluster_mode {
	DV_CLUSTER_NONE = 0,
	DV_CLUSTER_COROSYNC,
};

/* What happens when a second node activates an address that is active on
 * another node (DESIGN §3, "Conflicts"). */
enum dv_range_policy {
	DV_POLICY_NONDISRUPTIVE = 0, /* z/OS default */
	DV_POLICY_DISRUPTIVE,
	DV_POLICY_UNIQUE,
};

/* The policy as the configuration spells it: "MOVEABLE NONDISRUPTIVE",
 * "MOVEABLE DISRUPTIVE", "UNIQUE" (dvipad -nv, the engine's reasons). */
const char *dv_policy_keyword(enum dv_range_policy p);
/* The policy as status shows it: "nondisruptive", "disruptive", "unique". */
const char *dv_policy_name(enum dv_range_policy p);

enum dv_moveable {
	DV_MOVE_IMMEDIATE = 0, /* default for VIPADEFINE */
	DV_MOVE_WHENIDLE,
	DV_MOVE_NONE, /* VIPABACKUP without MOVEABLE IMMEDIATE mask */
};

struct dv_conf_range {
	struct dv_prefix prefix;
	enum dv_range_policy policy;
	bool deleted; /* VIPARANGE DELETE seen for this prefix */
	/* BINDWATCH: a socket bound to an address of the range activates it,
	 * for programs the preload shim cannot reach (sock_diag). */
	bool bindwatch;
	/* SOURCEVIPA: programs that activated an address of the range send
	 * from it by default (the preload shim's DVIPA_SOURCE=auto). */
	bool sourcevipa;
	/* ROUTED (IPv4): the range is one local route, and an nftables set of
	 * the active addresses decides which of them answer (dvipad(8),
	 * "Routed ranges"); no address per VIPA. */
	bool routed;
	size_t n_users, n_groups;
	char **users; /* names as written, for printing */
	uid_t *uids;  /* resolved at parse time */
	char **groups;
	gid_t *gids;
	unsigned line;
};

/* VIPADEFINE (rank 255) and VIPABACKUP (rank 1..254) both become this:
 * one entry per address. */
struct dv_conf_define {
	struct dv_addr addr;
	uint8_t plen;  /* prefix length the address is added with (mask) */
	unsigned rank; /* 255 for VIPADEFINE */
	enum dv_moveable moveable;
	uint16_t trackport; /* 0: none */
	unsigned line;
};

/* VIPADISTRIBUTE DISTMETHOD; the order is the normalized form's. */
enum dv_dist_method {
	DV_DIST_BASEWLM = 0, /* z/OS default: weights from each target's spare CPU */
	DV_DIST_SERVERWLM,   /* weights from each listener's accept-queue headroom */
	DV_DIST_ROUNDROBIN,
	DV_DIST_WEIGHTEDACTIVE,
	DV_DIST_HOTSTANDBY,
};

/* "BASEWLM", "SERVERWLM", "ROUNDROBIN", "WEIGHTEDACTIVE", "HOTSTANDBY". */
const char *dv_dist_method_keyword(enum dv_dist_method m);

#define DV_DIST_MAX_PORTS 4 /* per statement, as on z/OS */
/* SYSPLEXPORTS hands out the ports from here to DV_DIST_SLICE_POOL_HI as
 * the nodes' outbound ports of the address (engine.h): Linux's default
 * ephemeral range (net.ipv4.ip_local_port_range), whole 64-port blocks,
 * because the kernel only narrows that range for a socket. */
#define DV_DIST_SLICE_POOL_LO 32768
#define DV_DIST_SLICE_POOL_HI 60927
#define DV_DIST_MAX_DESTS 32	   /* targets per statement, as on z/OS */
#define DV_DIST_MAX_BACKUPS 31	   /* HOTSTANDBY: BACKUP targets besides the PREFERRED */
#define DV_DIST_DEFAULT_WEIGHT 10  /* WEIGHTEDACTIVE without WEIGHT */
#define DV_DIST_MAX_WEIGHT 99	   /* z/OS's range is 1..99 */
#define DV_DIST_MAX_AFFINITY 99999 /* TIMEDAFFINITY seconds, z/OS's range */
#define DV_DIST_PREFERRED_RANK 255 /* HOTSTANDBY's PREFERRED target, above every BACKUP rank */

/* One DESTIP target: a node of the cluster, by its NODE name. */
struct dv_conf_dest {
	char node[DV_NODE_NAME_MAX];
	unsigned weight; /* WEIGHTEDACTIVE: 1..99; otherwise 0 */
	unsigned rank;	 /* HOTSTANDBY: DV_DIST_PREFERRED_RANK or BACKUP 1..254; otherwise 0 */
	unsigned line;	 /* where its name is */
};

/* One VIPADISTRIBUTE DEFINE (DELETEs are applied while parsing). */
struct dv_conf_distribute {
	struct dv_addr addr; /* a VIPADEFINE or VIPABACKUP address of this configuration */
	enum dv_dist_method method;
	unsigned affinity_s; /* TIMEDAFFINITY; 0: none */
	bool sysplexports;
	size_t n_ports;
	uint16_t ports[DV_DIST_MAX_PORTS]; /* as written, no duplicates */
	bool dest_all;			   /* DESTIP ALL: every node of the cluster */
	size_t n_dests;
	struct dv_conf_dest dests[DV_DIST_MAX_DESTS]; /* as written */
	unsigned line;
};

struct dv_conf {
	char *file; /* name errors refer to */
	char node[DV_NODE_NAME_MAX];
	char interface[IF_NAMESIZE];
	enum dv_cluster_mode cluster;
	char group[DV_GROUP_NAME_MAX];

	/* Announcement after acquiring an address: COUNT gratuitous ARPs /
	 * unsolicited NAs, INTERVAL ms apart, the first at once. */
	unsigned announce_count;       /* default 3 */
	unsigned announce_interval_ms; /* default 500 */
	/* Duplicate-address probe before the first activation: COUNT probes,
	 * INTERVAL ms apart, then INTERVAL ms of waiting; COUNT 0 disables. */
	unsigned probe_count;	    /* default 2 */
	unsigned probe_interval_ms; /* default 100 */
	/* Kernel lifetime of an installed address; dvipad refreshes it every
	 * third of it. */
	unsigned lease_s; /* default 30 */
	/* Holds and standbys one uid other than root may have on this node
	 * (MAXUSERVIPAS, default DV_CONF_USER_VIPAS). */
	unsigned user_vipas;
	/* NICE: the scheduling priority dvipad raises itself to (never
	 * lowers), -20..19, default DV_CONF_NICE. */
	int nice;
	/* METRICS LISTEN addr:port: dvipad serves OpenMetrics over HTTP
	 * there (metrics_http.c). Off (port 0) by default. */
	struct dv_addr metrics_addr;
	uint16_t metrics_port;

	size_t n_ranges;
	struct dv_conf_range *ranges; /* sorted: most specific first */
	size_t n_defines;
	struct dv_conf_define *defines; /* defines and backups, by address */
	size_t n_distribute;
	struct dv_conf_distribute *distribute; /* in the order of the file */
};

/*
 * Parse a configuration. Every error is written to errf (may be NULL) as
 * "FILE:LINE: message\n". Returns 0 and *ret on success, or a negative
 * errno-style code; -EINVAL means the text had errors (count in
 * *ret_nerrors when not NULL). The file cannot be opened: -errno, with one
 * line "FILE: strerror" written to errf.
 */
int dv_conf_parse_file(const char *path, FILE *errf, struct dv_conf **ret, unsigned *ret_nerrors);
int dv_conf_parse_string(const char *name, const char *text, size_t len, FILE *errf, struct dv_conf **ret,
			 unsigned *ret_nerrors);

struct dv_conf *dv_conf_free(struct dv_conf *c);

/* Normalized form: every keyword in full capitals, every default spelled
 * out, ranges in CIDR notation. Parses back to an equal configuration. */
void dv_conf_print(const struct dv_conf *c, FILE *f);

/* The most specific live (not DELETEd) range containing a, or NULL. */
const struct dv_conf_range *dv_conf_find_range(const struct dv_conf *c, const struct dv_addr *a);
/* The prefixes of the ROUTED ranges (not deleted), in the ranges' order,
 * malloc'ed into *ret (NULL when none): their number, or -ENOMEM. */
int dv_conf_routed(const struct dv_conf *c, struct dv_prefix **ret);
/* This node's define or backup entry for a, or NULL. */
const struct dv_conf_define *dv_conf_find_define(const struct dv_conf *c, const struct dv_addr *a);
/* Whether uid/gids may use range r: root always, else a listed user or a
 * listed group (primary or supplementary); a range without ALLOW admits root only. */
bool dv_conf_range_allows(const struct dv_conf_range *r, uid_t uid, const gid_t *gids, size_t n_gids);

/*
 * Check ranges and defines against the addresses the interface already has
 * that are not dvipa's own (DESIGN §2: a range covering a non-VIPA address
 * of the node is an error). Writes "FILE:LINE: ..." for each and returns the
 * number of errors.
 */
unsigned dv_conf_check_local(const struct dv_conf *c, const struct dv_addr *local, size_t n_local, FILE *errf);

#define _cleanup_conf_ _cleanup_(dv_conf_freep)
static inline void dv_conf_freep(struct dv_conf **c)
{
	dv_conf_free(*c);
}

/*
 * Status names of the engine's views (engine.h's enums, which include this
 * header; hence plain numbers here): enum dv_origin ("none", "bind", "api",
 * "operator", "define", "backup") and enum dv_vipa_state ("active",
 * "waiting", "inactive"). For holds, dv_kind_name() in proto.h.
 */
const char *dv_origin_name(int origin);
const char *dv_state_name(int state);
