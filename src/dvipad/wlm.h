/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Linux has no WLM: the weights a distributed VIPA's target reports for
 * BASEWLM and SERVERWLM (dvipa.conf(5)), from what this host measures.
 *
 *  - Spare CPU: the idle and iowait share of all CPUs in /proc/stat over a
 *    window of DV_WLM_WINDOW_MS, smoothed (the mean of the new window and
 *    the previous value), as a weight 1..DV_AS_WEIGHT_MAX: 1 + 15 x spare,
 *    rounded. Every change re-points slots on every node and makes targets
 *    send their connections to pin, so the weight moves only when the
 *    smoothed value is three quarters of a step away from it (5 % of the
 *    CPU), and at most once per DV_WLM_HOLD_MS. Until a first window has passed
 *    it is DV_AS_WEIGHT_MAX (no sign of load yet).
 *  - Accept-queue headroom (SERVERWLM): the share of a port's listeners'
 *    backlog that is free, (backlog - queued) / backlog, summed over the
 *    listeners on the port; the port's weight is the CPU weight times that
 *    share, rounded up, so at least 1 while a listener exists, taken at
 *    most once per DV_WLM_HOLD_MS.
 *  - Active connections (WEIGHTEDACTIVE, on the distributor): the slots
 *    numgen draws from, shared so that a target below its weighted share
 *    of the open connections gets more of the new ones (dv_wlm_active).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DV_WLM_WINDOW_MS 3000u
#define DV_WLM_HOLD_MS 10000u
#define DV_WLM_MAX_TARGETS 64 /* DV_ENGINE_MAX_NODES */

/* The first line of /proc/stat: jiffies since boot. */
struct dv_wlm_jiffies {
	uint64_t total, spare; /* every state; idle + iowait */
};

struct dv_wlm {
	const char *stat_path;
	struct dv_wlm_jiffies last;
	uint64_t last_ms, changed_ms;
	bool have_last, have_spare;
	double spare; /* smoothed, 0..1 */
	unsigned weight;
};

/* stat_path: "/proc/stat", or another file of its format (tests). */
void dv_wlm_init(struct dv_wlm *w, const char *stat_path);
/* Parse the "cpu " line of a /proc/stat text. 0 or -EBADMSG. */
int dv_wlm_parse(const char *text, struct dv_wlm_jiffies *ret);
/* A reading at now_ms (monotonic): counts a window when one has passed.
 * Whether the weight changed. */
bool dv_wlm_update(struct dv_wlm *w, const struct dv_wlm_jiffies *j, uint64_t now_ms);
/* Read stat_path and update. 0 or -errno (the weight stays). */
int dv_wlm_sample(struct dv_wlm *w, uint64_t now_ms);
/* The spare-CPU weight, 1..DV_AS_WEIGHT_MAX. */
unsigned dv_wlm_weight(const struct dv_wlm *w);
/* SERVERWLM: cpu_weight scaled by a port's free accept-queue share. */
unsigned dv_wlm_server_weight(unsigned cpu_weight, uint64_t queued, uint64_t backlog);

/* A port's SERVERWLM weight as reported: an accept queue changes from one
 * look to the next, so a new value is taken at most once per
 * DV_WLM_HOLD_MS (the first at once). */
struct dv_wlm_hold {
	unsigned weight; /* 0: none yet */
	uint64_t changed_ms;
};
/* The weight to report now, want being the value measured. */
unsigned dv_wlm_held(struct dv_wlm_hold *h, unsigned want, uint64_t now_ms);

/* WEIGHTEDACTIVE: the number of slots of m each of n targets gets, from
 * its configured weight (0: not ready, no slot) and its open connections.
 * With A connections in all, target k's fair count is A x w_k / W; its
 * share of the slots is w_k times (fair + 4) / (active + 4) (the 4: one
 * connection in flight moves little), within 1/4 and 4, then scaled to m
 * (largest
 * remainders, ties to the lower index; every ready target at least one slot
 * when m allows). Without connections the shares are the weights'.
 * ret_count[0..n) sums to m if any weight is nonzero, else to 0. */
void dv_wlm_active(const unsigned *weight, const uint64_t *active, size_t n, uint32_t m, uint32_t *ret_count);
/* Lay ret_count out as m slots (target indexes, in runs). */
void dv_wlm_active_slots(const uint32_t *count, size_t n, uint32_t m, uint32_t *slots);
