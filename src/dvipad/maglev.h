/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016) with weights: the
 * slot table a distributed VIPA's new connections are spread by. A pure
 * function of (targets, weights, seed, size), so that every node computes the
 * identical table from the replicated state (DESIGN §5).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DV_MAGLEV_M_DEFAULT 65537u  /* prime; > 100 * N keeps shares within 1 % */
#define DV_MAGLEV_M_MAX 16777213u   /* the largest prime below 2^24 */
#define DV_MAGLEV_MAX_TARGETS 1024u /* far beyond z/OS's 32 per statement */
#define DV_MAGLEV_MAX_WEIGHT 65535u
#define DV_MAGLEV_NONE UINT32_MAX /* a slot of a table without any target */

struct dv_maglev_target {
	const char *key; /* its name: where its permutation comes from */
	uint32_t weight; /* 0: no slots (quiesced, not ready) */
};

/* Whether m is prime. */
bool dv_maglev_prime(uint32_t m);

/*
 * Fill table[0..m-1] with indexes into targets[0..n-1]. The targets must be
 * sorted by key (strcmp), without duplicates, so that the table does not
 * depend on the order they were learnt in. Each target takes slots in
 * proportion to its weight; with no target of nonzero weight every slot is
 * DV_MAGLEV_NONE. Returns 0, -EINVAL (m not a prime in 2..DV_MAGLEV_M_MAX,
 * unsorted or too many targets, a weight too large) or -ENOMEM.
 */
int dv_maglev_build(const struct dv_maglev_target *targets, size_t n, uint32_t m, uint32_t seed, uint32_t *table);
