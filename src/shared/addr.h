/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Addresses and prefixes, IPv4 and IPv6, with no dependency beyond libc.
 * Shared by dvipad, dvipactl, libdvipa and the preload shim.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Large enough for any address or "address/prefixlen" as text. */
#define DV_ADDR_STRLEN 64

struct dv_addr {
	uint8_t family; /* AF_INET or AF_INET6; 0 means unset */
	union {
		struct in_addr v4;
		struct in6_addr v6;
		uint8_t bytes[16];
	};
};

struct dv_prefix {
	struct dv_addr addr; /* host bits always zero */
	uint8_t len;
};

/* Parse a numeric IPv4 or IPv6 address. 0 or -EINVAL. A v4-mapped IPv6
 * address (::ffff:a.b.c.d) is returned as IPv4. */
int dv_addr_parse(const char *s, struct dv_addr *ret);
/* Parse "addr/len". Host bits set below len are an error (-EINVAL). */
int dv_prefix_parse(const char *s, struct dv_prefix *ret);
/* Parse a dotted IPv4 netmask; -EINVAL unless its one bits are contiguous. */
int dv_mask_parse(const char *s, uint8_t *ret_len);
/* Build a prefix from an address and a length; host bits must be zero. */
int dv_prefix_make(const struct dv_addr *a, unsigned len, struct dv_prefix *ret);

const char *dv_addr_fmt(const struct dv_addr *a, char buf[static DV_ADDR_STRLEN]);
const char *dv_prefix_fmt(const struct dv_prefix *p, char buf[static DV_ADDR_STRLEN]);

/* Total order: IPv4 before IPv6, then by bytes. */
int dv_addr_cmp(const struct dv_addr *a, const struct dv_addr *b);
bool dv_addr_eq(const struct dv_addr *a, const struct dv_addr *b);
size_t dv_addr_size(const struct dv_addr *a);	  /* 4 or 16 */
unsigned dv_addr_maxlen(const struct dv_addr *a); /* 32 or 128 */
uint32_t dv_addr_hash(const struct dv_addr *a);

bool dv_prefix_contains(const struct dv_prefix *p, const struct dv_addr *a);
bool dv_prefix_overlaps(const struct dv_prefix *a, const struct dv_prefix *b);

/* sockaddr conversions; v4-mapped IPv6 sockaddrs convert to IPv4. */
int dv_addr_from_sockaddr(const struct sockaddr *sa, size_t salen, struct dv_addr *ret, uint16_t *ret_port);

/*
 * Whether a is an address of this host (in the caller's network namespace),
 * whatever ip_nonlocal_bind says: the kernel routes a datagram to a local
 * address from that very address. Without netlink, async-signal-safe: a
 * UDP socket, connect() (through connect_fn, NULL for libc's), getsockname().
 */
bool dv_addr_is_local(const struct dv_addr *a, int (*connect_fn)(int, const struct sockaddr *, socklen_t));

/* A block of addresses no VIPA may come from, and why. */
struct dv_addr_block {
	struct dv_prefix prefix;
	const char *what; /* "loopback address", "multicast address", ... */
};

/*
 * The block that keeps prefix p from holding VIPAs, or NULL when none does:
 * p lies in it or overlaps it (0.0.0.0/0 overlaps them all). The blocks:
 * unspecified, "this network" 0/8, loopback (127/8, ::1), link-local
 * (169.254/16, fe80::/10), multicast (224/4, ff00::/8), limited broadcast,
 * reserved 240/4, IPv4-mapped ::ffff:0:0/96. When p lies in several, the
 * most specific is returned (255.255.255.255 is limited broadcast, not
 * reserved). An address is checked as its /32 or /128.
 */
const struct dv_addr_block *dv_prefix_unusable(const struct dv_prefix *p);
const struct dv_addr_block *dv_addr_unusable(const struct dv_addr *a);
