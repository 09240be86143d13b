/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hashtab.h"

#include <errno.h>
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

int dv_hashtab_put(struct dv_hashtab *t, void *item, dv_hash_fn hash)
{
	/* Load factor at most 1/2: probe chains stay short. */
	if ((t->n + 1) * 2 > t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : MIN_CAP;
		void **ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		for (size_t j = 0; j < t->cap; j++)
			if (t->slots[j])
				place(ns, ncap, t->slots[j], hash(t->slots[j]));
		free(t->slots);
		t->slots = ns;
		t->cap = ncap;
	}
	place(t->slots, t->cap, item, hash(item));
	t->n++;
	return 0;
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
