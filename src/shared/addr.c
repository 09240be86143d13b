/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Addresses and prefixes: parsing, formatting, comparison (addr.h). */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

size_t dv_addr_size(const struct dv_addr *a)
{
	return a->family == AF_INET ? 4 : 16;
}

unsigned dv_addr_maxlen(const struct dv_addr *a)
{
	return a->family == AF_INET ? 32 : 128;
}

int dv_addr_parse(const char *s, struct dv_addr *ret)
{
	struct dv_addr a = {0};

	if (!s || !*s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &a.v4) == 1) {
		a.family = AF_INET;
	} else if (inet_pton(AF_INET6, s, &a.v6) == 1) {
		a.family = AF_INET6;
		if (memcmp(a.bytes, v4mapped_prefix, 12) == 0) {
			memmove(a.bytes, a.bytes + 12, 4);
			memset(a.bytes + 4, 0, 12);
			a.family = AF_INET;
		}
	} else {
		return -EINVAL;
	}
	*ret = a;
	return 0;
}

static void mask_host_bits(struct dv_addr *a, unsigned len, bool *ret_had_bits)
{
	size_t n = dv_addr_size(a);
	bool had = false;

	for (size_t i = 0; i < n; i++) {
		unsigned bit = (unsigned)i * 8;
		uint8_t keep;

		if (bit >= len)
			keep = 0;
		else if (bit + 8 <= len)
			keep = 0xff;
		else
			keep = (uint8_t)(0xff << (8 - (len - bit)));
		if (a->bytes[i] & (uint8_t)~keep)
			had = true;
		a->bytes[i] &= keep;
	}
	if (ret_had_bits)
		*ret_had_bits = had;
}

int dv_prefix_make(const struct dv_addr *a, unsigned len, struct dv_prefix *ret)
{
	struct dv_prefix p = {.addr = *a};
	bool had;

	if (a->family != AF_INET && a->family != AF_INET6)
		return -EINVAL;
	if (len > dv_addr_maxlen(a))
		return -EINVAL;
	mask_host_bits(&p.addr, len, &had);
	if (had)
		return -EINVAL;
	p.len = (uint8_t)len;
	*ret = p;
	return 0;
}

int dv_prefix_parse(const char *s, struct dv_prefix *ret)
{
	char buf[DV_ADDR_STRLEN];
	const char *slash;
	struct dv_addr a;
	char *end;
	unsigned long len;
	size_t n;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (dv_addr_parse(buf, &a) < 0)
		return -EINVAL;
	if (slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (errno || *end || len > dv_addr_maxlen(&a))
		return -EINVAL;
	/* A v4-mapped prefix was written in IPv6 terms. */
	if (a.family == AF_INET && strchr(buf, ':')) {
		if (len < 96)
			return -EINVAL;
		len -= 96;
	}
	return dv_prefix_make(&a, (unsigned)len, ret);
}

int dv_mask_parse(const char *s, uint8_t *ret_len)
{
	struct in_addr m;
	uint32_t v;
	unsigned len = 0;

	if (!s || inet_pton(AF_INET, s, &m) != 1)
		return -EINVAL;
	v = ntohl(m.s_addr);
	while (len < 32 && (v & (0x80000000u >> len)))
		len++;
	/* Contiguous: nothing may be set after the first zero bit. */
	if (len < 32 && (v & (0xffffffffu >> len)))
		return -EINVAL;
	*ret_len = (uint8_t)len;
	return 0;
}

const char *dv_addr_fmt(const struct dv_addr *a, char buf[static DV_ADDR_STRLEN])
{
	if (!a || (a->family != AF_INET && a->family != AF_INET6) ||
	    !inet_ntop(a->family, a->bytes, buf, DV_ADDR_STRLEN))
		snprintf(buf, DV_ADDR_STRLEN, "(none)");
	return buf;
}

const char *dv_prefix_fmt(const struct dv_prefix *p, char buf[static DV_ADDR_STRLEN])
{
	char a[DV_ADDR_STRLEN];

	snprintf(buf, DV_ADDR_STRLEN, "%s/%u", dv_addr_fmt(&p->addr, a), p->len);
	return buf;
}

int dv_addr_cmp(const struct dv_addr *a, const struct dv_addr *b)
{
	if (a->family != b->family)
		return a->family == AF_INET ? -1 : 1;
	return memcmp(a->bytes, b->bytes, dv_addr_size(a));
}

bool dv_addr_eq(const struct dv_addr *a, const struct dv_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, dv_addr_size(a)) == 0;
}

uint32_t dv_addr_hash(const struct dv_addr *a)
{
	/* FNV-1a: addresses are not attacker-chosen beyond the configured ranges. */
	uint32_t h = 2166136261u ^ a->family;

	for (size_t i = 0; i < dv_addr_size(a); i++) {
		h ^= a->bytes[i];
		h *= 16777619u;
	}
	return h;
}

bool dv_prefix_contains(const struct dv_prefix *p, const struct dv_addr *a)
{
	struct dv_addr m = *a;

	if (p->addr.family != a->family)
		return false;
	mask_host_bits(&m, p->len, NULL);
	return dv_addr_eq(&m, &p->addr);
}

bool dv_prefix_overlaps(const struct dv_prefix *a, const struct dv_prefix *b)
{
	/* Two prefixes overlap exactly when the shorter contains the longer's base. */
	if (a->addr.family != b->addr.family)
		return false;
	return a->len <= b->len ? dv_prefix_contains(a, &b->addr) : dv_prefix_contains(b, &a->addr);
}

int dv_addr_from_sockaddr(const struct sockaddr *sa, size_t salen, struct dv_addr *ret, uint16_t *ret_port)
{
	struct dv_addr a = {0};
	uint16_t port;

	if (!sa || salen < sizeof(sa_family_t))
		return -EINVAL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		if (salen < sizeof(*s4))
			return -EINVAL;
		a.family = AF_INET;
		a.v4 = s4->sin_addr;
		port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (salen < sizeof(*s6))
			return -EINVAL;
		a.family = AF_INET6;
		a.v6 = s6->sin6_addr;
		port = ntohs(s6->sin6_port);
		if (memcmp(a.bytes, v4mapped_prefix, 12) == 0) {
			memmove(a.bytes, a.bytes + 12, 4);
			memset(a.bytes + 4, 0, 12);
			a.family = AF_INET;
		}
	} else {
		return -EAFNOSUPPORT;
	}
	*ret = a;
	if (ret_port)
		*ret_port = port;
	return 0;
}

#define V4(a, b, c, d)                                                                                                 \
	{                                                                                                              \
		.family = AF_INET, .bytes = { a, b, c, d }                                                             \
	}
#define V6(b0, b1)                                                                                                     \
	{                                                                                                              \
		.family = AF_INET6, .bytes = { b0, b1 }                                                                \
	}

/*
 * Ordered so that the first block containing an address is its most specific
 * one; an address in none of them can move between hosts as a VIPA. Link-local
 * addresses are refused too: they are only meaningful on one link and
 * the kernel treats them specially (no forwarding, zone-scoped in IPv6).
 */
static const struct dv_addr_block unusable_blocks[] = {
	{{V4(0, 0, 0, 0), 32}, "unspecified address"},
	{{V4(0, 0, 0, 0), 8}, "\"this network\" address"},
	{{V4(127, 0, 0, 0), 8}, "loopback address"},
	{{V4(169, 254, 0, 0), 16}, "link-local address"},
	{{V4(224, 0, 0, 0), 4}, "multicast address"},
	{{V4(255, 255, 255, 255), 32}, "limited broadcast address"},
	{{V4(240, 0, 0, 0), 4}, "reserved address"},
	{{{.family = AF_INET6}, 128}, "unspecified address"},
	{{{.family = AF_INET6, .bytes = {[15] = 1}}, 128}, "loopback address"},
	{{{.family = AF_INET6, .bytes = {[10] = 0xff, [11] = 0xff}}, 96}, "IPv4-mapped address"},
	{{V6(0xfe, 0x80), 10}, "link-local address"},
	{{V6(0xff, 0), 8}, "multicast address"},
};

const struct dv_addr_block *dv_prefix_unusable(const struct dv_prefix *p)
{
	const struct dv_addr_block *overlap = NULL;

	for (size_t i = 0; i < sizeof(unusable_blocks) / sizeof(unusable_blocks[0]); i++) {
		const struct dv_addr_block *b = &unusable_blocks[i];

		if (!dv_prefix_overlaps(&b->prefix, p))
			continue;
		if (b->prefix.len <= p->len)
			return b;
		/* p is wider than b: name a block rather than a single
		 * address where it covers one (0.0.0.0/0 overlaps 0.0.0.0/8). */
		if (!overlap || (overlap->prefix.len == dv_addr_maxlen(&overlap->prefix.addr) &&
				 b->prefix.len < dv_addr_maxlen(&b->prefix.addr)))
			overlap = b;
	}
	return overlap;
}

const struct dv_addr_block *dv_addr_unusable(const struct dv_addr *a)
{
	struct dv_prefix p = {.addr = *a, .len = (uint8_t)dv_addr_maxlen(a)};

	return dv_prefix_unusable(&p);
}

bool dv_addr_is_local(const struct dv_addr *a, int (*connect_fn)(int, const struct sockaddr *, socklen_t))
{
	struct sockaddr_storage to = {0}, me;
	socklen_t tl, ml = sizeof(me);
	struct dv_addr got;
	bool local = false;
	int fd;

	if (a->family != AF_INET && a->family != AF_INET6)
		return false;
	fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	if (a->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(9);
		s4->sin_addr = a->v4;
		tl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(9);
		s6->sin6_addr = a->v6;
		tl = sizeof(*s6);
	}
	if ((connect_fn ? connect_fn : connect)(fd, (struct sockaddr *)&to, tl) == 0 &&
	    getsockname(fd, (struct sockaddr *)&me, &ml) == 0 &&
	    dv_addr_from_sockaddr((struct sockaddr *)&me, ml, &got, NULL) == 0)
		local = dv_addr_eq(&got, a);
	close(fd);
	return local;
}
