/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A set of addresses on the one hash table (hashtab.h): O(1)
 * add/del/has, for sets of tens of thousands of VIPAs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "hashtab.h"

struct dv_addrset {
	struct dv_hashtab t; /* of malloc'ed struct dv_addr */
	size_t n;	     /* members */
};

/* Hash and match functions for a dv_hashtab of items that begin with a
 * struct dv_addr (their key), such as the members of a set. */
uint32_t dv_addr_item_hash(const void *item);
bool dv_addr_item_match(const void *item, const void *key);

/* 1 added, 0 already present, -ENOMEM. */
int dv_addrset_add(struct dv_addrset *s, const struct dv_addr *a);
/* 1 removed, 0 absent. */
int dv_addrset_del(struct dv_addrset *s, const struct dv_addr *a);
bool dv_addrset_has(const struct dv_addrset *s, const struct dv_addr *a);
void dv_addrset_clear(struct dv_addrset *s);
/* Iterate: for (size_t i = 0; dv_addrset_next(s, &i, &a);) */
bool dv_addrset_next(const struct dv_addrset *s, size_t *i, const struct dv_addr **ret);
