/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one hash table (hashtab.h): open addressing, backward-shift deletion. */
#include "hashtab.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define MIN_CAP 64

void **dv_hashtab_find(const struct dv_hashtab *t, uint32_t h, dv_match_fn match, const void *key)
{
	size_t mask, i;

	if (!t->cap)
		return NULL;
	mask = t->cap - 1;
	for (i = h & mask; t->slots[i]; i = (i + 1) & mask)
		if (match(t->slots[i], key))
			return &t->slots[i];
	return NULL;
}

void *dv_hashtab_get(const struct dv_hashtab *t, uint32_t h, dv_match_fn match, const void *key)
{
	void **slot = dv_hashtab_find(t, h, match, key);

	return slot ? *slot : NULL;
}

static void place(void **slots, size_t cap, void *item, uint32_t h)
{
	size_t i;

	for (i = h & (cap - 1); slots[i]; i = (i + 1) & (cap - 1))
		;
	slots[i] = item;
}

/* Move every item into a new array of ncap slots. */
static int rehash(struct dv_hashtab *t, size_t ncap, dv_hash_fn hash)
{
	void **ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t j = 0; j < t->cap; j++)
		if (t->slots[j])
			place(ns, ncap, t->slots[j], hash(t->slots[j]));
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

int dv_hashtab_reserve(struct dv_hashtab *t, size_t n, dv_hash_fn hash)
{
	size_t ncap = t->cap ? t->cap : MIN_CAP;

	/* Load factor at most 1/2: probe chains stay short. */
	while ((t->n + n) * 2 > ncap) {
		if (ncap > SIZE_MAX / 4)
			return -ENOMEM;
		ncap *= 2;
	}
	return ncap == t->cap ? 0 : rehash(t, ncap, hash);
}

int dv_hashtab_put(struct dv_hashtab *t, void *item, dv_hash_fn hash)
{
	int r = dv_hashtab_reserve(t, 1, hash);

	if (r < 0)
		return r;
	place(t->slots, t->cap, item, hash(item));
	t->n++;
	return 0;
}

void dv_hashtab_filter(struct dv_hashtab *t, bool (*keep)(void *item, void *ud), void *ud, dv_hash_fn hash)
{
	size_t mask = t->cap - 1, start = 0;

	if (!t->cap)
		return;
	for (size_t j = 0; j < t->cap; j++)
		if (t->slots[j] && !keep(t->slots[j], ud)) {
			t->slots[j] = NULL;
			t->n--;
		}
	/*
	 * Place the survivors again, in probe order from an empty slot (there
	 * is one: the load factor is at most 1/2). Each item then moves only
	 * towards its home, into a hole its own chain has, and no chain that
	 * was already repaired runs through a hole made later.
	 */
	while (t->slots[start])
		start++;
	for (size_t k = 1; k < t->cap; k++) {
		size_t j = (start + k) & mask;
		void *item = t->slots[j];

		if (!item)
			continue;
		t->slots[j] = NULL;
		place(t->slots, t->cap, item, hash(item));
	}
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
void dv_hashtab_del(struct dv_hashtab *t, void **slot, dv_hash_fn hash)
{
	size_t mask = t->cap - 1;
	size_t i = (size_t)(slot - t->slots), j = i;

	t->slots[i] = NULL;
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!t->slots[j])
			break;
		k = hash(t->slots[j]) & mask;
		/* Leave an entry whose home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j] = NULL;
		i = j;
	}
	t->n--;
}

void dv_hashtab_clear(struct dv_hashtab *t)
{
	free(t->slots);
	*t = (struct dv_hashtab){0};
}
