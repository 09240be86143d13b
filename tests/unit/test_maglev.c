/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Maglev table (maglev.c): full, even, proportional to weights, stable
 * when a target goes, identical for identical input; and the layout of the
 * key nft hashes (jhash.c; tests/system/test_jhash.py checks the hash itself
 * against the kernel).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jhash.h"
#include "maglev.h"

#define M DV_MAGLEV_M_DEFAULT
#define SEED 0x5eed1234u

static char names[64][16];

/* n targets "t00".. (sorted by construction), weights w (NULL: all 1). */
static void targets(struct dv_maglev_target *t, size_t n, const uint32_t *w)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "t%02zu", i);
		t[i] = (struct dv_maglev_target){.key = names[i], .weight = w ? w[i] : 1};
	}
}

static void count(const uint32_t *table, uint32_t m, size_t n, uint32_t *ret)
{
	memset(ret, 0, n * sizeof(*ret));
	for (uint32_t s = 0; s < m; s++) {
		assert_true(table[s] < n);
		ret[table[s]]++;
	}
}

static void test_full_and_even(void **state)
{
	uint32_t *table = malloc(M * sizeof(*table)), c[32];
	struct dv_maglev_target t[32];
	double worst = 0;

	for (size_t n = 1; n <= 32; n++) {
		targets(t, n, NULL);
		assert_int_equal(dv_maglev_build(t, n, M, SEED, table), 0);
		count(table, M, n, c); /* every slot holds a target */
		for (size_t i = 0; i < n; i++) {
			double dev = ((double)c[i] - (double)M / n) / ((double)M / n);

			if (dev < 0)
				dev = -dev;
			if (dev > worst)
				worst = dev;
			assert_true(dev <= 0.01);
		}
	}
	printf("maglev: worst share deviation at N = 1..32, M = %u: %.4f %%\n", M, worst * 100);
	free(table);
}

static void test_weighted(void **state)
{
	static const uint32_t w[][5] = {{1, 2, 3, 4, 5}, {10, 10, 0, 99, 1}, {1, 1, 1, 1, 2}};
	uint32_t *table = malloc(M * sizeof(*table)), c[5];
	struct dv_maglev_target t[5];

	for (size_t k = 0; k < sizeof(w) / sizeof(w[0]); k++) {
		uint32_t sum = 0;

		targets(t, 5, w[k]);
		for (size_t i = 0; i < 5; i++)
			sum += w[k][i];
		assert_int_equal(dv_maglev_build(t, 5, M, SEED, table), 0);
		count(table, M, 5, c);
		for (size_t i = 0; i < 5; i++) {
			double want = (double)M * w[k][i] / sum;

			if (w[k][i] == 0)
				assert_int_equal(c[i], 0);
			else
				assert_true(c[i] >= want * 0.99 && c[i] <= want * 1.01);
		}
	}
	free(table);
}

/* The reported weights (1..16, dist.c) at the table size dvipad uses for
 * three and for eight targets: each share within 1 % of M of w / sum(w). */
static void test_reported_weights(void **state)
{
	static const uint32_t w3[][3] = {{16, 16, 1}, {1, 8, 16}, {16, 16, 16}, {7, 9, 16}};
	static const uint32_t w8[] = {1, 2, 4, 8, 16, 3, 5, 16};
	uint32_t *table = malloc(8009 * sizeof(*table)), c[8];
	struct dv_maglev_target t[8];

	for (size_t k = 0; k < sizeof(w3) / sizeof(w3[0]); k++) {
		targets(t, 3, w3[k]);
		assert_int_equal(dv_maglev_build(t, 3, 3001, SEED, table), 0);
		count(table, 3001, 3, c);
		for (size_t i = 0; i < 3; i++) {
			double want = 3001.0 * w3[k][i] / (w3[k][0] + w3[k][1] + w3[k][2]);

			assert_true(c[i] > want - 30.01 && c[i] < want + 30.01);
		}
	}
	targets(t, 8, w8);
	assert_int_equal(dv_maglev_build(t, 8, 8009, SEED, table), 0);
	count(table, 8009, 8, c);
	for (size_t i = 0; i < 8; i++) {
		double want = 8009.0 * w8[i] / 55;

		assert_true(c[i] > want - 80.09 && c[i] < want + 80.09);
	}
	free(table);
}

/* Removing target r of n: the slots it had move (to the survivors), and
 * few slots move from one survivor to another. */
static void test_removal(void **state)
{
	uint32_t *before = malloc(M * sizeof(*before)), *after = malloc(M * sizeof(*after));
	struct dv_maglev_target t[32], u[32];
	double worst = 0;

	for (size_t n = 2; n <= 32; n++) {
		size_t r = n / 2, moved = 0, between = 0;

		targets(t, n, NULL);
		memcpy(u, t, r * sizeof(*t));
		memcpy(u + r, t + r + 1, (n - r - 1) * sizeof(*t));
		assert_int_equal(dv_maglev_build(t, n, M, SEED, before), 0);
		assert_int_equal(dv_maglev_build(u, n - 1, M, SEED, after), 0);
		for (uint32_t s = 0; s < M; s++) {
			/* The same target in both: index shifts past r. */
			uint32_t a = after[s] >= r ? after[s] + 1 : after[s];

			if (a == before[s])
				continue;
			moved++;
			between += before[s] != r;
		}
		/* The removed target's slots: its share, 1/N. */
		assert_true(moved - between >= (double)M / n * 0.99 && moved - between <= (double)M / n * 1.01);
		assert_true(between <= M / 100);
		if ((double)between / M > worst)
			worst = (double)between / M;
	}
	printf("maglev: worst share moved between survivors at N = 2..32: %.4f %%\n", worst * 100);
	free(before);
	free(after);
}

static void test_deterministic(void **state)
{
	uint32_t *a = malloc(M * sizeof(*a)), *b = malloc(M * sizeof(*b));
	static const uint32_t w[] = {3, 1, 2};
	struct dv_maglev_target t[3];

	targets(t, 3, w);
	assert_int_equal(dv_maglev_build(t, 3, M, SEED, a), 0);
	assert_int_equal(dv_maglev_build(t, 3, M, SEED, b), 0);
	assert_memory_equal(a, b, M * sizeof(*a));
	/* The seed is part of the input: another seed, another table. */
	assert_int_equal(dv_maglev_build(t, 3, M, SEED + 1, b), 0);
	assert_memory_not_equal(a, b, M * sizeof(*a));
	free(a);
	free(b);
}

static void test_edges(void **state)
{
	uint32_t table[101], c[3];
	struct dv_maglev_target t[3];
	static const uint32_t zero[] = {0, 0, 0};

	/* No target, or none with a weight: every slot empty. */
	assert_int_equal(dv_maglev_build(NULL, 0, 101, SEED, table), 0);
	for (size_t s = 0; s < 101; s++)
		assert_int_equal(table[s], DV_MAGLEV_NONE);
	targets(t, 3, zero);
	assert_int_equal(dv_maglev_build(t, 3, 101, SEED, table), 0);
	for (size_t s = 0; s < 101; s++)
		assert_int_equal(table[s], DV_MAGLEV_NONE);
	/* One target takes everything; a tiny prime table still fills. */
	targets(t, 1, NULL);
	assert_int_equal(dv_maglev_build(t, 1, 101, SEED, table), 0);
	count(table, 101, 1, c);
	targets(t, 3, NULL);
	assert_int_equal(dv_maglev_build(t, 3, 2, SEED, table), 0);
	count(table, 2, 3, c);

	/* Bad input. */
	assert_int_equal(dv_maglev_build(t, 3, 100, SEED, table), -EINVAL);
	assert_int_equal(dv_maglev_build(t, 3, 1, SEED, table), -EINVAL);
	assert_int_equal(dv_maglev_build(t, 3, 16777259u, SEED, table), -EINVAL); /* prime, too large */
	t[1].key = t[0].key;
	assert_int_equal(dv_maglev_build(t, 3, 101, SEED, table), -EINVAL);
	targets(t, 3, NULL);
	t[0].key = "z";
	assert_int_equal(dv_maglev_build(t, 3, 101, SEED, table), -EINVAL);
	targets(t, 3, NULL);
	t[2].weight = DV_MAGLEV_MAX_WEIGHT + 1;
	assert_int_equal(dv_maglev_build(t, 3, 101, SEED, table), -EINVAL);

	assert_true(dv_maglev_prime(65537) && dv_maglev_prime(2) && dv_maglev_prime(DV_MAGLEV_M_MAX));
	assert_false(dv_maglev_prime(65535) || dv_maglev_prime(1) || dv_maglev_prime(0));
}

static void test_nft_key(void **state)
{
	uint8_t key[DV_NFT_KEY_MAX];
	struct dv_addr a = {.family = AF_INET};
	static const uint8_t want4[] = {192, 0, 2, 1, 0x1f, 0x90, 0, 0};

	inet_pton(AF_INET, "192.0.2.1", &a.v4);
	assert_int_equal(dv_nft_key_addr_port(&a, 8080, key), 8);
	assert_memory_equal(key, want4, sizeof(want4));
	a.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &a.v6);
	assert_int_equal(dv_nft_key_addr_port(&a, 443, key), 20);
	assert_memory_equal(key, a.bytes, 16);
	assert_int_equal(key[16], 0x01);
	assert_int_equal(key[17], 0xbb);
	assert_int_equal(key[18] | key[19], 0);
	/* The scaled hash stays in range, and uses the high bits. */
	for (uint32_t seed = 0; seed < 1000; seed++)
		assert_true(dv_nft_jhash_mod(key, 20, seed, 7) < 7);
	assert_int_equal(dv_nft_jhash_mod(key, 20, 1, 1), 0);
	assert_int_equal(dv_nft_jhash_mod(key, 20, 1, 2), dv_jhash(key, 20, 1) >> 31);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_and_even),	 cmocka_unit_test(test_weighted),
		cmocka_unit_test(test_reported_weights), cmocka_unit_test(test_removal),
		cmocka_unit_test(test_deterministic),	 cmocka_unit_test(test_edges),
		cmocka_unit_test(test_nft_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
