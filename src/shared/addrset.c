/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sets of addresses on the one hash table (addrset.h). */
#include "addrset.h"

#include <errno.h>
#include <stdlib.h>

uint32_t dv_addr_item_hash(const void *item)
{
	return dv_addr_hash(item);
}

bool dv_addr_item_match(const void *item, const void *key)
{
	return dv_addr_eq(item, key);
}

int dv_addrset_add(struct dv_addrset *s, const struct dv_addr *a)
{
	struct dv_addr *m;

	if (dv_addrset_has(s, a))
		return 0;
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	*m = *a;
	if (dv_hashtab_put(&s->t, m, dv_addr_item_hash) < 0) {
		free(m);
		return -ENOMEM;
	}
	s->n = dv_hashtab_size(&s->t);
	return 1;
}

bool dv_addrset_has(const struct dv_addrset *s, const struct dv_addr *a)
{
	return dv_hashtab_get(&s->t, dv_addr_hash(a), dv_addr_item_match, a) != NULL;
}

int dv_addrset_del(struct dv_addrset *s, const struct dv_addr *a)
{
	void **slot = dv_hashtab_find(&s->t, dv_addr_hash(a), dv_addr_item_match, a);
	void *m;

	if (!slot)
		return 0;
	m = *slot;
	dv_hashtab_del(&s->t, slot, dv_addr_item_hash);
	free(m);
	s->n = dv_hashtab_size(&s->t);
	return 1;
}

void dv_addrset_clear(struct dv_addrset *s)
{
	struct dv_addr *m;

	DV_HASHTAB_FOREACH(m, &s->t)
		free(m);
	dv_hashtab_clear(&s->t);
	s->n = 0;
}

bool dv_addrset_next(const struct dv_addrset *s, size_t *i, const struct dv_addr **ret)
{
	for (; *i < s->t.cap; (*i)++)
		if (s->t.slots[*i]) {
			*ret = s->t.slots[(*i)++];
			return true;
		}
	return false;
}
