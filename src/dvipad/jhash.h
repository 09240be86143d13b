/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A user-space replica of the kernel's jhash() and of nftables' "jhash KEY
 * mod M seed S" expression (net/netfilter/nft_hash.c), so that dvipad can
 * predict which Maglev slot, hence which target, the kernel picks for a flow.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* nft registers hold at most 16 bytes of an address plus a 4-byte port. */
#define DV_NFT_KEY_MAX 20

/* The kernel's jhash(key, len, seed) (include/linux/jhash.h). */
uint32_t dv_jhash(const void *key, size_t len, uint32_t seed);

/*
 * nft's "jhash KEY mod m seed s": the kernel scales the hash into 0..m-1
 * with reciprocal_scale() (the high 32 bits of hash * m), not with a
 * remainder. m >= 1.
 */
uint32_t dv_nft_jhash_mod(const void *key, size_t len, uint32_t seed, uint32_t m);

/*
 * The key nft hashes for "ip saddr . tcp sport" (or "ip6 saddr . tcp
 * sport"): each field of a concatenation fills whole 4-byte registers, so
 * the port (network order) takes the first 2 bytes of a zeroed 4. Writes
 * 8 (IPv4) or 20 (IPv6) bytes to key and returns that length.
 */
size_t dv_nft_key_addr_port(const struct dv_addr *a, uint16_t port, uint8_t key[static DV_NFT_KEY_MAX]);
