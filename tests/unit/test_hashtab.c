/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one hash table (hashtab.c): put, get, del, reserve, filter and
 * iteration against a plain array as the model, with keys chosen so that
 * chains collide and wrap around the end of the slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "hashtab.h"

#define N 5000

struct item {
	uint32_t key;
	bool in;
};

/* Few distinct homes, so that probe chains are long and wrap. */
static uint32_t hash_key(uint32_t key)
{
	return key * 2654435761u >> 3 | (key & 7) << 29;
}

static uint32_t item_hash(const void *item)
{
	return hash_key(((const struct item *)item)->key);
}

static bool item_match(const void *item, const void *key)
{
	return ((const struct item *)item)->key == *(const uint32_t *)key;
}

static struct item *get(const struct dv_hashtab *t, uint32_t key)
{
	return dv_hashtab_get(t, hash_key(key), item_match, &key);
}

/* Every item of the model is found, and nothing else is in the table. */
static void check(const struct dv_hashtab *t, struct item *items)
{
	size_t n = 0, seen = 0;
	struct item *it;

	for (uint32_t k = 0; k < N; k++) {
		assert_ptr_equal(get(t, k), items[k].in ? &items[k] : NULL);
		n += items[k].in;
	}
	assert_int_equal(dv_hashtab_size(t), n);
	DV_HASHTAB_FOREACH(it, t) {
		assert_true(it->in);
		seen++;
	}
	assert_int_equal(seen, n);
}

static bool keep_odd_thirds(void *item, void *ud)
{
	struct item *it = item;
	unsigned *calls = ud;

	(*calls)++;
	it->in = it->key % 3 != 1;
	return it->in;
}

static void test_hashtab(void **state)
{
	struct item *items = calloc(N, sizeof(*items));
	struct dv_hashtab t = {0};
	unsigned calls = 0;

	(void)state;
	assert_non_null(items);
	assert_null(get(&t, 1));
	assert_int_equal(dv_hashtab_reserve(&t, 100, item_hash), 0);
	assert_true(t.cap >= 200);
	for (uint32_t k = 0; k < N; k++) {
		items[k] = (struct item){.key = k, .in = true};
		assert_int_equal(dv_hashtab_put(&t, &items[k], item_hash), 0);
	}
	check(&t, items);

	for (uint32_t k = 0; k < N; k += 2) {
		void **slot = dv_hashtab_find(&t, hash_key(k), item_match, &k);

		assert_non_null(slot);
		dv_hashtab_del(&t, slot, item_hash);
		items[k].in = false;
	}
	check(&t, items);

	dv_hashtab_filter(&t, keep_odd_thirds, &calls, item_hash);
	assert_int_equal(calls, N / 2);
	check(&t, items);

	/* Reserved room: the puts that follow do not move the slots. */
	assert_int_equal(dv_hashtab_reserve(&t, N / 2, item_hash), 0);
	{
		void **slots = t.slots;

		for (uint32_t k = 0; k < N; k += 2) {
			items[k].in = true;
			assert_int_equal(dv_hashtab_put(&t, &items[k], item_hash), 0);
		}
		assert_ptr_equal(t.slots, slots);
	}
	check(&t, items);

	dv_hashtab_clear(&t);
	assert_int_equal(dv_hashtab_size(&t), 0);
	assert_null(get(&t, 1));
	free(items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hashtab),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
