/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bob Jenkins' lookup3 hash as the kernel spells it (include/linux/jhash.h),
 * and nftables' use of it. tests/system/test_jhash.py compares the replica
 * with the kernel's own choices.
 */
#include "jhash.h"

#include <arpa/inet.h>
#include <string.h>

#define JHASH_INITVAL 0xdeadbeefu

static inline uint32_t rol32(uint32_t w, unsigned s)
{
	return (w << s) | (w >> (32 - s));
}

#define JHASH_MIX(a, b, c)                                                                                             \
	do {                                                                                                           \
		a -= c;                                                                                                \
		a ^= rol32(c, 4);                                                                                      \
		c += b;                                                                                                \
		b -= a;                                                                                                \
		b ^= rol32(a, 6);                                                                                      \
		a += c;                                                                                                \
		c -= b;                                                                                                \
		c ^= rol32(b, 8);                                                                                      \
		b += a;                                                                                                \
		a -= c;                                                                                                \
		a ^= rol32(c, 16);                                                                                     \
		c += b;                                                                                                \
		b -= a;                                                                                                \
		b ^= rol32(a, 19);                                                                                     \
		a += c;                                                                                                \
		c -= b;                                                                                                \
		c ^= rol32(b, 4);                                                                                      \
		b += a;                                                                                                \
	} while (0)

#define JHASH_FINAL(a, b, c)                                                                                           \
	do {                                                                                                           \
		c ^= b;                                                                                                \
		c -= rol32(b, 14);                                                                                     \
		a ^= c;                                                                                                \
		a -= rol32(c, 11);                                                                                     \
		b ^= a;                                                                                                \
		b -= rol32(a, 25);                                                                                     \
		c ^= b;                                                                                                \
		c -= rol32(b, 16);                                                                                     \
		a ^= c;                                                                                                \
		a -= rol32(c, 4);                                                                                      \
		b ^= a;                                                                                                \
		b -= rol32(a, 14);                                                                                     \
		c ^= b;                                                                                                \
		c -= rol32(b, 24);                                                                                     \
	} while (0)

/* The kernel reads whole words in CPU order (__get_unaligned_cpu32). */
static inline uint32_t get32(const uint8_t *k)
{
	uint32_t w;

	memcpy(&w, k, sizeof(w));
	return w;
}

uint32_t dv_jhash(const void *key, size_t len, uint32_t seed)
{
	const uint8_t *k = key;
	uint32_t a, b, c;

	a = b = c = JHASH_INITVAL + (uint32_t)len + seed;
	while (len > 12) {
		a += get32(k);
		b += get32(k + 4);
		c += get32(k + 8);
		JHASH_MIX(a, b, c);
		len -= 12;
		k += 12;
	}
	/* The tail, byte by byte, as the kernel's switch with fallthroughs. */
	switch (len) {
	case 12:
		c += (uint32_t)k[11] << 24;
		/* fallthrough */
	case 11:
		c += (uint32_t)k[10] << 16;
		/* fallthrough */
	case 10:
		c += (uint32_t)k[9] << 8;
		/* fallthrough */
	case 9:
		c += k[8];
		/* fallthrough */
	case 8:
		b += (uint32_t)k[7] << 24;
		/* fallthrough */
	case 7:
		b += (uint32_t)k[6] << 16;
		/* fallthrough */
	case 6:
		b += (uint32_t)k[5] << 8;
		/* fallthrough */
	case 5:
		b += k[4];
		/* fallthrough */
	case 4:
		a += (uint32_t)k[3] << 24;
		/* fallthrough */
	case 3:
		a += (uint32_t)k[2] << 16;
		/* fallthrough */
	case 2:
		a += (uint32_t)k[1] << 8;
		/* fallthrough */
	case 1:
		a += k[0];
		JHASH_FINAL(a, b, c);
		break;
	default: /* 0: nothing left */
		break;
	}
	return c;
}

uint32_t dv_nft_jhash_mod(const void *key, size_t len, uint32_t seed, uint32_t m)
{
	return (uint32_t)(((uint64_t)dv_jhash(key, len, seed) * m) >> 32);
}

size_t dv_nft_key_addr_port(const struct dv_addr *a, uint16_t port, uint8_t key[static DV_NFT_KEY_MAX])
{
	size_t alen = a->family == AF_INET6 ? 16 : 4;
	uint16_t nport = htons(port);

	memset(key, 0, DV_NFT_KEY_MAX);
	memcpy(key, a->bytes, alen);
	memcpy(key + alen, &nport, sizeof(nport));
	return alen + 4;
}
