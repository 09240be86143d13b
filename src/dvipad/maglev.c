/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Weighted Maglev. Each target walks its own permutation of the slots
 * (offset + j * skip mod m, m prime, so every slot comes up) and claims the
 * next free one on its turn; the targets take turns in rounds until the
 * table is full. A weight w of the largest weight W gives a target a turn
 * in w of every W rounds, spread evenly, so its share is w / sum(w) while
 * equal weights are plain Maglev. Removing a target frees only its slots,
 * and the other targets' permutations refill them: about 1/N of the table
 * moves, and little moves between the survivors.
 */
#include "maglev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jhash.h"

bool dv_maglev_prime(uint32_t m)
{
	if (m < 2)
		return false;
	for (uint32_t d = 2; (uint64_t)d * d <= m; d++)
		if (m % d == 0)
			return false;
	return true;
}

struct walk {
	uint32_t pos, skip, weight;
};

int dv_maglev_build(const struct dv_maglev_target *targets, size_t n, uint32_t m, uint32_t seed, uint32_t *table)
{
	struct walk *w;
	uint32_t wmax = 0, filled = 0;

	if (m > DV_MAGLEV_M_MAX || !dv_maglev_prime(m) || n > DV_MAGLEV_MAX_TARGETS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (targets[i].weight > DV_MAGLEV_MAX_WEIGHT)
			return -EINVAL;
		if (i > 0 && strcmp(targets[i - 1].key, targets[i].key) >= 0)
			return -EINVAL;
		if (targets[i].weight > wmax)
			wmax = targets[i].weight;
	}
	for (uint32_t s = 0; s < m; s++)
		table[s] = DV_MAGLEV_NONE;
	if (wmax == 0)
		return 0;
	w = calloc(n, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(targets[i].key);

		/* Two independent hashes of the name: where its walk starts and
		 * its stride (nonzero, so that the walk visits every slot). */
		w[i].pos = dv_jhash(targets[i].key, len, seed) % m;
		w[i].skip = m > 2 ? dv_jhash(targets[i].key, len, ~seed) % (m - 1) + 1 : 1;
		w[i].weight = targets[i].weight;
	}
	for (uint64_t round = 0; filled < m; round++) {
		for (size_t i = 0; i < n && filled < m; i++) {
			/* A turn when floor(round * w / W) steps up. */
			if (!w[i].weight || (round + 1) * w[i].weight / wmax == round * w[i].weight / wmax)
				continue;
			while (table[w[i].pos] != DV_MAGLEV_NONE)
				w[i].pos = (uint32_t)(((uint64_t)w[i].pos + w[i].skip) % m);
			table[w[i].pos] = (uint32_t)i;
			filled++;
		}
	}
	free(w);
	return 0;
}
