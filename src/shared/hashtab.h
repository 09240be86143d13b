/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one hash table of dvipa: open addressing with linear probing over
 * pointers to items the caller owns (the table never allocates or frees an
 * item). Deletion shifts later entries back, so lookups never meet
 * tombstones and cost stays flat however many items came and went.
 *
 * The caller hashes: every call that may move items takes the same hash
 * function, which must hash an item exactly as the key it is looked up by.
 * Libc only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dv_hashtab {
	void **slots;
	size_t cap; /* 0 or a power of two */
	size_t n;
};

typedef uint32_t (*dv_hash_fn)(const void *item);
typedef bool (*dv_match_fn)(const void *item, const void *key);

/* The slot holding the item that matches key (hash h), or NULL. The slot
 * stays valid until the next put or del. */
void **dv_hashtab_find(const struct dv_hashtab *t, uint32_t h, dv_match_fn match, const void *key);
/* The matching item, or NULL. */
void *dv_hashtab_get(const struct dv_hashtab *t, uint32_t h, dv_match_fn match, const void *key);
/* Add item (not already present). 0 or -ENOMEM (table unchanged). */
int dv_hashtab_put(struct dv_hashtab *t, void *item, dv_hash_fn hash);
/* Remove the item in slot (from dv_hashtab_find). */
void dv_hashtab_del(struct dv_hashtab *t, void **slot, dv_hash_fn hash);
/* Room for n more items without allocating: the puts that follow cannot
 * fail. 0 or -ENOMEM (table unchanged). */
int dv_hashtab_reserve(struct dv_hashtab *t, size_t n, dv_hash_fn hash);
/* Keep only the items for which keep(item, ud) is true; keep may free the
 * others (they are no longer in the table once it returns false). */
void dv_hashtab_filter(struct dv_hashtab *t, bool (*keep)(void *item, void *ud), void *ud, dv_hash_fn hash);
/* How many items the table holds. */
static inline size_t dv_hashtab_size(const struct dv_hashtab *t)
{
	return t->n;
}
/* Forget every item (frees the slots, not the items). */
void dv_hashtab_clear(struct dv_hashtab *t);

/* Every item, in slot order: `for (size_t i = 0; i < t.cap; i++) if (t.slots[i])`
 * wrapped so that callers read the same. Items must not be added or removed
 * inside the loop. */
#define DV_HASHTAB_FOREACH(item, t)                                                                                    \
	for (size_t _i = 0; _i < (t)->cap; _i++)                                                                       \
		if (((item) = (t)->slots[_i]) != NULL)
