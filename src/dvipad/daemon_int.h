/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's private state and what its files share: daemon.c (the
 * wiring), daemon_control.c (the control socket's and the metrics'
 * callbacks) and daemon_reclaim.c (socket holds taken again). */
#pragma once

#include <stdbool.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "addrset.h"
#include "daemon.h"
#include "dist.h"
#include "engine.h"
#include "gate.h"
#include "hashtab.h"
#include "log.h"
#include "observe.h"
#include "watch.h"

struct dv_probe_wait {
	LIST_ENTRY(dv_probe_wait) link;
	struct dv_daemon *d;
	uint64_t client;
	uid_t uid;
	struct dv_request req;
};

struct dv_sock_grace {
	LIST_ENTRY(dv_sock_grace) link;
	struct dv_daemon *d;
	struct dv_addr addr;
	sd_event_source *timer;
	sd_event_source *exit; /* the claimant's pidfd: the grace ends with it */
};

struct dv_daemon {
	sd_event *ev;
	char *conf_path;
	struct dv_conf *conf;
	struct dv_engine *engine;
	struct dv_cluster *cluster;
	struct dv_kaddr *kaddr;
	struct dv_kroute *kroute; /* ROUTED ranges */
	struct dv_announce *announce;
	struct dv_sockdiag *sockdiag;
	struct dv_control *control;
	struct dv_metrics_http *metrics_http; /* METRICS LISTEN, or NULL */
	struct dv_watch watch;		      /* changes to the monitors and the metrics */
	struct dv_dist *dist;		      /* NULL: no VIPADISTRIBUTE at start */
	uint64_t started_ms;

	/* The daemon's policy, pure and tested on its own: whether addresses
	 * may be installed and what clients hear meanwhile (gate.h); what
	 * the sockets on this node's addresses mean to the engine
	 * (observe.h). This file feeds them and carries out their answers. */
	struct dv_gate gate;
	struct dv_observe obs;

	/* I/O in progress. */
	LIST_HEAD(, dv_probe_wait) probes; /* requests waiting for a duplicate-address probe */
	LIST_HEAD(, dv_sock_grace) graces; /* socket holds looked at again when their grace ends */
	sd_event_source *define_timer;	   /* TRACKPORT/WHENIDLE poll */

	struct dv_rangetab *rangetab; /* mapped SOCKET.ranges, for the preload shim; NULL: none */
	/* Per address, the program whose bind through the shim claimed it
	 * last (struct claimant): in a UNIQUE range, the one program allowed
	 * until its socket appears; and the socket hold's grace lasts only
	 * while it lives. */
	struct dv_hashtab claimants;
	struct dv_ratelimit rl_lost; /* socket holds not taken again */
	/* Addresses of claimants AGAIN_LOST: taken back if they become
	 * free (dv_reclaim_freed); an entry leaves once looked at. */
	struct dv_addrset lost;
	/* While effects are dispatched: the addresses they take away from
	 * this node that have connections here (one sock_diag dump for all
	 * of them, not one each); NULL: not known, ask. */
	const struct dv_addrset *move_busy;
	unsigned owner_walks; /* left for this status request (socket_holder) */
	/* What waits for a ROUTED address's queued addition (daemon_routed.c),
	 * by address. */
	struct dv_hashtab parked;
	/* IPv6 ROUTED ranges: the MLD reports of their active addresses'
	 * groups, for those just added (mld_new, sent from mld_now) and all
	 * of them again from mld_timer. NULL sources: no such range. */
	sd_event_source *mld_timer, *mld_now;
	struct dv_addrset mld_new;
	bool mld_failed; /* the last report failed (logged once) */
};

struct claimant {
	struct dv_addr addr; /* key: first, for dv_addr_item_hash */
	pid_t pid;
	uint64_t at_ms;
	char comm[16]; /* pid's, when it claimed */
	/* Taken again for sockets still bound (reclaim_socket_holds): the
	 * claim is in flight; or it found the address another node's, which
	 * status shows while pid lives (the program cannot be told). */
	enum { AGAIN_NONE = 0, AGAIN_SENT, AGAIN_LOST } again;
};

/* As many as the addresses a node is built to hold (issue 15's 65,536):
 * about 4 MiB when full. */
#define MAX_CLAIMANTS 65536
/* Sockets of an address looked at for their programs; more are rare. */
#define MAX_INODES 64

/* Put an engine event into the cluster stream (or apply it, alone). */
void dv_daemon_submit(struct dv_daemon *d, struct dv_event *ev);
struct claimant *dv_claimant_get(struct dv_daemon *d, const struct dv_addr *a);
/* The program pid claimed a; NULL when the table is full. */
struct claimant *dv_claimant_set(struct dv_daemon *d, const struct dv_addr *a, pid_t pid);
/* The prefixes of the configured ranges (only the BINDWATCH ones if
 * bindwatch); NULL on allocation failure. */
struct dv_prefix *dv_range_prefixes(const struct dv_conf *c, bool bindwatch, size_t *ret_n);

/* daemon_reclaim.c */
void dv_reclaim_answered(struct dv_daemon *d, const struct dv_addr *a, enum dv_result result, const char *reason);
void dv_reclaim_socket_holds(struct dv_daemon *d);
/* After an event that may have freed an address another node had. */
void dv_reclaim_freed(struct dv_daemon *d);

/* daemon_routed.c */
struct dv_kroute_ops;
extern const struct dv_kroute_ops daemon_routed_ops;
/* The ROUTED ranges' routes and tables (kernel_routed.c); without any,
 * what an earlier dvipad left of them is removed. */
int daemon_open_routed(struct dv_daemon *d);
/* With IPv6 ROUTED ranges, their neighbour solicitations answered for the
 * active addresses, and MLD reports of their groups (d->announce open). */
int daemon_routed_answer_ns(struct dv_daemon *d);
/* An answer to a client's request, or a notice: sent, or parked until the
 * address it says is usable is (a ROUTED address's addition queued). */
void daemon_reply(struct dv_daemon *d, uint64_t client, uint32_t seq, const struct dv_addr *a, enum dv_result result,
		  const char *reason);
void daemon_event(struct dv_daemon *d, uint64_t client, const struct dv_addr *a, enum dv_notify what,
		  const char *reason);
void daemon_parked_clear(struct dv_daemon *d);

/* daemon.c, for daemon_routed.c */
/* a is in the kernel now: announced, shown, logged. */
/* log_prio: its log line's (LOG_DEBUG when a summary says it, daemon_routed.c). */
void daemon_address_up(struct dv_daemon *d, const struct dv_addr *a, int log_prio);
/* The kernel refused a: this node's holds on it end. */
void daemon_release_local_holds(struct dv_daemon *d, const struct dv_addr *a);
/* a is off this node (in a cluster: the next owner may put it on). */
void daemon_report_removed(struct dv_daemon *d, const struct dv_addr *a);

/* daemon.c, for daemon_control.c */
/* A client's request: answered, or submitted to the cluster. */
void daemon_request(struct dv_daemon *d, uint64_t client, uid_t uid, const struct dv_request *req);
/* A client went: its holds and standbys end. */
void daemon_client_gone(struct dv_daemon *d, uint64_t client);
/* What the distributed VIPAs' module needs of the daemon now. */
struct dv_dist_env daemon_dist_env(struct dv_daemon *d);
/* Publish the ranges' table for the preload shim next to the socket. */
void daemon_rangetab_open(struct dv_daemon *d, const char *sock);
