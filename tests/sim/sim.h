/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the simulator's parts share (tests/sim/README.md):
 *   sim.c        the world, the daemon model, the simulated CPG and
 *                votequorum, the actions and the run
 *   sim_check.c  the quorum's truth and the invariants, checked after
 *                every step
 *   sim_cpg.c    the simulated CPG's queues, and the daemons' batches
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "gate.h"
#include "sync.h"

#define MAXN 7
#define NRANGE 3
#define NDEF 3
#define NADDR (NRANGE * 3 + NDEF)
#define MAXVIEWS (2 * MAXN + 2)

/* ---- the world ---- */

struct msg {
	uint64_t serial; /* of the view it was sent in */
	int conn;	 /* sender's CPG connection */
	dv_nodeid_t node;
	uint8_t *buf;
	size_t len;
};

struct queue {
	struct msg *v;
	size_t head, n, cap;
};

struct view {
	bool used;
	uint64_t serial;
	int conn[MAXN]; /* members, by node id */
	size_t n;
	struct queue q;
};

struct client {
	uint64_t id;
	bool alive;
	uint32_t seq;
};

/* A request in flight from one of this node's clients. */
struct req {
	uint64_t client;
	uint32_t seq;
	enum dv_event_type type;
	enum dv_kind kind;
	int addr;
	bool cancelled; /* a RELEASE of the address was sent after it */
};

/* A hold (API) or standby a client was told it has (invariant 3). */
struct ref {
	struct dv_gate_ref r;
	bool protected; /* node stayed in the quorate component since */
	uint64_t step;
};

struct dmn {
	dv_nodeid_t node;
	unsigned inc; /* dvipad incarnation on this node */
	struct dv_engine *e;
	struct dv_gate gate;
	struct dv_sync *sync; /* connected to CPG */
	int conn;	      /* CPG connection id (global) */
	int view;	      /* index into views, -1 */
	int prev[MAXN];	      /* members of the previous view (conn ids) */
	size_t n_prev;
	bool local_quorate; /* what the glue last told the gate */
	bool quorum_pending;
	/* The fresh quorum read timed out and its answer is still to come;
	 * notifications and ring when it was asked (cluster_corosync.c). */
	bool probe_late, quorum_unknown;
	uint64_t quorum_notes, probe_notes, probe_ring;
	struct dv_sync_batch batch; /* sent at the end of the step (sim_cpg.c) */
	bool old;		    /* runs wire protocol 1: no batches, bare beats (--old) */
	bool broken;		    /* sync returned an error: leave and join again */
	bool lapsed;		    /* its ring lease ran out (own messages late) */
	bool installed[NADDR];
	struct client *clients;
	size_t n_clients;
	struct req *reqs;
	size_t n_reqs;
	struct ref *refs;
	size_t n_refs;
	uint64_t next_client;
};

struct node {
	bool cs_up;    /* corosync runs */
	int label;     /* connectivity component */
	uint64_t ring; /* its totem ring's sequence number (kept across restarts, as corosync does) */
	unsigned sig;
	struct dmn *d;
	struct dv_conf_range ranges[NRANGE];
	size_t n_ranges;
	struct dv_conf_define defines[NDEF];
	size_t n_defines;
};

struct failure {
	bool failed;
	int inv;
	char what[512];
};

extern unsigned N;
extern struct node nodes[MAXN + 1]; /* 1..N */
extern struct view views[MAXVIEWS];
extern struct dv_addr addrs[NADDR];
extern struct failure fail;

/* sim.c */
void violation(int inv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *addr_s(const struct dv_addr *a);
bool any_msg(void);
bool client_alive(struct dmn *d, uint64_t id);
struct dmn *dmn_by_conn(int conn);
bool gate_open(struct dmn *d);

/* sim_cpg.c */
void queue_push(struct queue *q, const struct msg *m);
size_t queue_len(const struct queue *q);
void queue_free(struct queue *q);
/* A little-endian number of n bytes. */
uint64_t le(const uint8_t *p, int n);
/* d's batch, if any, into its view's queue as one message (stamped with
 * the view it goes in, as Corosync sees it), and every node's. */
void batch_flush(struct dmn *d);
/* m (its view and sender set) with buf's copy into d's view's queue, or
 * into d's batch when batching; a protocol-1 dvipad neither batches nor
 * says its protocol in a beat. */
int cpg_send(struct dmn *d, struct msg *m, const uint8_t *buf, size_t len, bool batching);
void batch_flush_all(void);

/* sim_check.c */
/* Whether the component with this label has a majority of the votes; node
 * n's, if its corosync runs. */
bool comp_quorate(int label);
bool truth_quorate(dv_nodeid_t n);
/* Nothing queued, no exchange, no quorum notification pending. */
bool stable(void);
/* Every invariant opt_checks asks for; a violation sets fail. */
void check_all(void);
/* Invariant 8, around one dv_engine_apply() on d: the owners before,
 * then every change in the engine's list of them. */
void owners_note(const struct dmn *d, dv_nodeid_t was[NADDR]);
void check_owner_changes(const struct dmn *d, const dv_nodeid_t was[NADDR]);
