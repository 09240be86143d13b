/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "addrset.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot_of(const struct dv_addrset *s, const struct dv_addr *a)
{
	size_t i = dv_addr_hash(a) & (s->cap - 1);

	while (s->slots[i].family && !dv_addr_eq(&s->slots[i], a))
		i = (i + 1) & (s->cap - 1);
	return i;
}

static int grow(struct dv_addrset *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 64;
	struct dv_addr *old = s->slots;
	size_t ocap = s->cap;

	s->slots = calloc(ncap, sizeof(*s->slots));
	if (!s->slots) {
		s->slots = old;
		return -ENOMEM;
	}
	s->cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].family)
			s->slots[slot_of(s, &old[i])] = old[i];
	free(old);
	return 0;
}

int dv_addrset_add(struct dv_addrset *s, const struct dv_addr *a)
{
	size_t i;

	/* Keep the load factor under 1/2 so probe chains stay short. */
	if ((s->n + 1) * 2 > s->cap && grow(s) < 0)
		return -ENOMEM;
	i = slot_of(s, a);
	if (s->slots[i].family)
		return 0;
	s->slots[i] = *a;
	s->n++;
	return 1;
}

bool dv_addrset_has(const struct dv_addrset *s, const struct dv_addr *a)
{
	return s->cap && s->slots[slot_of(s, a)].family;
}

int dv_addrset_del(struct dv_addrset *s, const struct dv_addr *a)
{
	size_t i, j;

	if (!s->cap)
		return 0;
	i = slot_of(s, a);
	if (!s->slots[i].family)
		return 0;
	/* Backward-shift deletion: move later members of the chain up so that
	 * lookups never stop early at the hole. */
	j = i;
	for (;;) {
		size_t home;

		j = (j + 1) & (s->cap - 1);
		if (!s->slots[j].family)
			break;
		home = dv_addr_hash(&s->slots[j]) & (s->cap - 1);
		if (((j - home) & (s->cap - 1)) >= ((j - i) & (s->cap - 1))) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i].family = 0;
	s->n--;
	return 1;
}

void dv_addrset_clear(struct dv_addrset *s)
{
	free(s->slots);
	s->slots = NULL;
	s->cap = s->n = 0;
}

bool dv_addrset_next(const struct dv_addrset *s, size_t *i, const struct dv_addr **ret)
{
	for (; *i < s->cap; (*i)++)
		if (s->slots[*i].family) {
			*ret = &s->slots[(*i)++];
			return true;
		}
	return false;
}
