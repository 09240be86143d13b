/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The user-space replica of nft's "jhash ip saddr . tcp sport mod M seed S"
 * (src/dvipad/jhash.c) as a filter, for tests/system/test_jhash.py to
 * compare with the kernel's choices:
 *
 *   nft-jhash SEED MOD < "ADDR PORT" lines  ->  "ADDR PORT BUCKET" lines
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jhash.h"

static int number(const char *s, unsigned long max, unsigned long *ret)
{
	char *end;

	errno = 0;
	*ret = strtoul(s, &end, 0);
	return errno || !*s || *end || *ret > max ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	unsigned long seed, mod, port;
	char line[256], addr[128], ps[16];
	unsigned lineno = 0;

	if (argc != 3 || number(argv[1], UINT32_MAX, &seed) < 0 || number(argv[2], UINT32_MAX, &mod) < 0 || mod == 0) {
		fprintf(stderr, "usage: nft-jhash SEED MOD < 'ADDR PORT' lines\n");
		return 2;
	}
	while (fgets(line, sizeof(line), stdin)) {
		uint8_t key[DV_NFT_KEY_MAX];
		struct dv_addr a;
		size_t len;

		lineno++;
		if (sscanf(line, "%127s %15s", addr, ps) != 2 || dv_addr_parse(addr, &a) < 0 ||
		    number(ps, 65535, &port) < 0) {
			fprintf(stderr, "nft-jhash: line %u: expected 'ADDR PORT'\n", lineno);
			return 1;
		}
		len = dv_nft_key_addr_port(&a, (uint16_t)port, key);
		printf("%s %lu %u\n", addr, port, dv_nft_jhash_mod(key, len, (uint32_t)seed, (uint32_t)mod));
	}
	return 0;
}
