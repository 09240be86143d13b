/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dvipad's counters, in one place: every subsystem counts what happens
 * with a one-line call here, and dv_metrics_render() turns them, with the
 * gauges read from the engine at that moment, into OpenMetrics text (what
 * `dvipactl metrics` prints and the METRICS LISTEN endpoint serves). The
 * metrics are documented in dvipad(8); a name or meaning changed here
 * changes there.
 *
 * One instance per process (dv_metrics): dvipad has one event loop and one
 * daemon, and a counter passed down through every subsystem's API would
 * be noise at each call site.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "proto.h"
#include "result.h"

/* Upper bounds of the takeover duration histogram, in milliseconds. */
#define DV_METRICS_TAKEOVER_BUCKETS 12

enum dv_transfer_event {
	DV_TRANSFER_SENT,     /* this node's state was taken for a member */
	DV_TRANSFER_RESTORED, /* this node took the group's state */
	DV_TRANSFER_REJECTED, /* a state from the group failed validation */
	DV_TRANSFER_N
};

#define DV_METRICS_REQ_TYPES 32 /* control request types counted; others count as type 0 */

struct dv_metrics {
	uint64_t activations[DV_ORIGIN_BACKUP + 1]; /* by origin, this node's interface */
	uint64_t deactivations;
	uint64_t refusals[DV_R_LEFT + 1]; /* by result */
	uint64_t takeovers;
	uint64_t takeover_buckets[DV_METRICS_TAKEOVER_BUCKETS + 1]; /* the last: +Inf */
	uint64_t takeover_sum_us;
	uint64_t moves;
	uint64_t quorum_changes;
	uint64_t membership_changes;
	uint64_t gate_closures;
	uint64_t announcements;
	uint64_t probes;
	uint64_t probe_conflicts;
	uint64_t requests[DV_METRICS_REQ_TYPES];
	uint64_t transfers[DV_TRANSFER_N];
	/* CLOCK_MONOTONIC of the last Corosync configuration change: where
	 * a takeover caused by the membership it brings starts. */
	uint64_t view_changed_us;
};

extern struct dv_metrics dv_metrics;

static inline void dv_metrics_refused(enum dv_result r)
{
	if ((unsigned)r <= DV_R_LEFT)
		dv_metrics.refusals[r]++;
}

static inline void dv_metrics_request(uint16_t type)
{
	dv_metrics.requests[type < DV_METRICS_REQ_TYPES ? type : 0]++;
}

/* This node put an address on its interface (origin: the engine's) or
 * took one off. */
void dv_metrics_activated(enum dv_origin origin);
/* This node installed an address another node had: us is the time from
 * its cause to the address on the interface. */
void dv_metrics_takeover(uint64_t us);

/* What the gauges are read from at render time. */
struct dv_metrics_input {
	const struct dv_engine *engine;
	const char *node;
	size_t installed;		  /* addresses on this node's interface */
	size_t clients;			  /* control connections */
	uint64_t started_ms;		  /* wall clock */
	uint64_t looks_index, looks_walk; /* dv_sockdiag_looks() */
};

/* The OpenMetrics text exposition, "# EOF" included: 0 and *ret
 * (malloc'ed, NUL-terminated, *ret_len bytes), or -ENOMEM. */
int dv_metrics_render(const struct dv_metrics_input *in, char **ret, size_t *ret_len);
