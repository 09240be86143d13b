/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The lifetime of the kernel addresses dvipad installs, from what
 * refreshing them costs.
 *
 * Why a model: refreshing one IPv4 address costs the kernel a walk of the
 * interface's address list (inet_rtm_newaddr), so a pass over n addresses
 * costs about k * n^2. A lifetime chosen from the last pass alone comes too
 * late while the set grows: measured with 21,000 addresses added within
 * seconds of a pass over 10,000, the next pass took 22 s on a loaded
 * machine and 7,373 addresses with a 30 s lifetime lapsed while held. So
 * an address gets the lifetime a pass over the set it joins will need:
 * the last pass's cost scaled by the square of the growth.
 *
 * Pure: the caller passes the figures.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The refresh may take 1/DV_LEASE_SHARE of a core: a lifetime is at least
 * 3 * DV_LEASE_SHARE times the CPU time of a pass, and 3 times its
 * duration (a pass ends within a third of the lifetime). */
#define DV_LEASE_SHARE 100
#define DV_LEASE_MAX 86400 /* the longest LEASE the configuration accepts */
/* Passes over fewer addresses say little about the per-address cost (one
 * scheduling delay is most of it): they do not become the model. */
#define DV_LEASE_MODEL_MIN 256

/* What one refresh pass cost. */
struct dv_lease_cost {
	size_t n;	  /* addresses refreshed */
	uint64_t cpu_us;  /* CPU time of the pass */
	uint64_t wall_us; /* its duration */
};

/* The lifetime, in seconds, for a set of n addresses when a pass over
 * cost->n cost what *cost says, scaled by (n / cost->n)^2: at least
 * lease_min, at most DV_LEASE_MAX (or lease_min if larger). NULL or an
 * empty cost: lease_min. */
unsigned dv_lease_for(unsigned lease_min, const struct dv_lease_cost *cost, size_t n);
