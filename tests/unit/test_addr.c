/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Addresses, prefixes, masks and the address set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "addr.h"
#include "addrset.h"
#include "rangetab.h"

static struct dv_addr A(const char *s) {
	struct dv_addr a;

	assert_int_equal(dv_addr_parse(s, &a), 0);
	return a;
}

static void
test_parse_format(void **state)
{
	char buf[DV_ADDR_STRLEN];
	struct dv_addr a;

	assert_int_equal(dv_addr_parse("10.1.1.5", &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(dv_addr_fmt(&a, buf), "10.1.1.5");
	assert_int_equal(dv_addr_parse("fd00:1::5", &a), 0);
	assert_int_equal(a.family, AF_INET6);
	assert_string_equal(dv_addr_fmt(&a, buf), "fd00:1::5");
	/* v4-mapped IPv6 is the IPv4 address. */
	assert_int_equal(dv_addr_parse("::ffff:10.1.1.5", &a), 0);
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(dv_addr_fmt(&a, buf), "10.1.1.5");
	assert_int_equal(dv_addr_parse("", &a), -EINVAL);
	assert_int_equal(dv_addr_parse("10.1.1", &a), -EINVAL);
	assert_int_equal(dv_addr_parse("10.1.1.5/24", &a), -EINVAL);
	assert_int_equal(dv_addr_parse(NULL, &a), -EINVAL);
}

static void test_prefix(void **state)
{
	char buf[DV_ADDR_STRLEN];
	struct dv_prefix p, q;

	assert_int_equal(dv_prefix_parse("10.1.1.0/24", &p), 0);
	assert_string_equal(dv_prefix_fmt(&p, buf), "10.1.1.0/24");
	assert_int_equal(dv_prefix_parse("10.1.1.5/24", &p), -EINVAL); /* host bits */
	assert_int_equal(dv_prefix_parse("10.1.1.0/33", &p), -EINVAL);
	assert_int_equal(dv_prefix_parse("10.1.1.0/", &p), -EINVAL);
	assert_int_equal(dv_prefix_parse("10.1.1.0/-1", &p), -EINVAL);
	assert_int_equal(dv_prefix_parse("10.1.1.0", &p), -EINVAL);
	assert_int_equal(dv_prefix_parse("fd00:1::/64", &p), 0);
	assert_string_equal(dv_prefix_fmt(&p, buf), "fd00:1::/64");
	assert_int_equal(dv_prefix_parse("fd00:1::/129", &p), -EINVAL);
	assert_int_equal(dv_prefix_parse("0.0.0.0/0", &p), 0);
	assert_true(dv_prefix_contains(&p, &(struct dv_addr){.family = AF_INET}));

	assert_int_equal(dv_prefix_parse("10.1.0.0/16", &p), 0);
	assert_int_equal(dv_prefix_parse("10.1.1.0/24", &q), 0);
	assert_true(dv_prefix_overlaps(&p, &q));
	assert_true(dv_prefix_overlaps(&q, &p));
	{
		struct dv_addr a = A("10.1.1.200"), b = A("10.2.0.1"), c = A("fd00::1");

		assert_true(dv_prefix_contains(&q, &a));
		assert_false(dv_prefix_contains(&q, &b));
		assert_false(dv_prefix_contains(&q, &c));
	}
	assert_int_equal(dv_prefix_parse("10.2.0.0/16", &q), 0);
	assert_false(dv_prefix_overlaps(&p, &q));
	/* IPv6 prefix in the middle of a byte */
	assert_int_equal(dv_prefix_parse("2001:db8::1:0/113", &p), 0);
	{
		struct dv_addr in = A("2001:db8::1:7fff"), out = A("2001:db8::1:8000");

		assert_true(dv_prefix_contains(&p, &in));
		assert_false(dv_prefix_contains(&p, &out));
	}
}

static void test_mask(void **state)
{
	uint8_t len;

	assert_int_equal(dv_mask_parse("255.255.255.0", &len), 0);
	assert_int_equal(len, 24);
	assert_int_equal(dv_mask_parse("255.255.255.192", &len), 0);
	assert_int_equal(len, 26);
	assert_int_equal(dv_mask_parse("0.0.0.0", &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(dv_mask_parse("255.255.255.255", &len), 0);
	assert_int_equal(len, 32);
	assert_int_equal(dv_mask_parse("255.0.255.0", &len), -EINVAL);
	assert_int_equal(dv_mask_parse("0.255.255.255", &len), -EINVAL);
	assert_int_equal(dv_mask_parse("255.255.255.1", &len), -EINVAL);
	assert_int_equal(dv_mask_parse("ffff::", &len), -EINVAL);
}

static void test_cmp_sockaddr(void **state)
{
	struct dv_addr a = A("10.0.0.1"), b = A("10.0.0.2"), c = A("::1"), out;
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
	uint16_t port;

	assert_true(dv_addr_cmp(&a, &b) < 0);
	assert_true(dv_addr_cmp(&b, &c) < 0); /* IPv4 first */
	assert_true(dv_addr_eq(&a, &a));
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &s6.sin6_addr);
	assert_int_equal(dv_addr_from_sockaddr((struct sockaddr *)&s6, sizeof(s6), &out, &port), 0);
	assert_true(dv_addr_eq(&out, &a));
	assert_int_equal(port, 80);
	assert_int_equal(dv_addr_from_sockaddr((struct sockaddr *)&s6, 4, &out, &port), -EINVAL);
}

static void test_addrset(void **state)
{
	struct dv_addrset s = {0};
	struct dv_addr a;
	const struct dv_addr *it;
	size_t i = 0, n = 0;

	/* Enough to force several growths and long probe chains. */
	for (uint32_t k = 0; k < 20000; k++) {
		a = (struct dv_addr){.family = AF_INET};
		a.v4.s_addr = htonl(0x0a000000u + k);
		assert_int_equal(dv_addrset_add(&s, &a), 1);
	}
	assert_int_equal(dv_addrset_add(&s, &a), 0);
	assert_int_equal(s.n, 20000);
	for (uint32_t k = 0; k < 20000; k += 2) {
		a.v4.s_addr = htonl(0x0a000000u + k);
		assert_int_equal(dv_addrset_del(&s, &a), 1);
		assert_int_equal(dv_addrset_del(&s, &a), 0);
	}
	for (uint32_t k = 0; k < 20000; k++) {
		a.v4.s_addr = htonl(0x0a000000u + k);
		assert_int_equal(dv_addrset_has(&s, &a), k % 2 == 1);
	}
	while (dv_addrset_next(&s, &i, &it))
		n++;
	assert_int_equal(n, 10000);
	dv_addrset_clear(&s);
	assert_false(dv_addrset_has(&s, &a));
}

/* What the block of an address or range is, "" when it may hold VIPAs. */
static const char *unusable(const char *text)
{
	static char buf[2 * DV_ADDR_STRLEN];
	const struct dv_addr_block *b;
	char pb[DV_ADDR_STRLEN];
	struct dv_prefix p;
	struct dv_addr a;

	if (strchr(text, '/')) {
		assert_int_equal(dv_prefix_parse(text, &p), 0);
		b = dv_prefix_unusable(&p);
	} else {
		assert_int_equal(dv_addr_parse(text, &a), 0);
		b = dv_addr_unusable(&a);
	}
	if (!b)
		return "";
	snprintf(buf, sizeof(buf), "%s %s", dv_prefix_fmt(&b->prefix, pb), b->what);
	return buf;
}

static void test_unusable(void **state)
{
	struct dv_addr raw = {.family = AF_INET6};

	/* Addresses: the most specific block they are in. */
	assert_string_equal(unusable("0.0.0.0"), "0.0.0.0/32 unspecified address");
	assert_string_equal(unusable("0.1.2.3"), "0.0.0.0/8 \"this network\" address");
	assert_string_equal(unusable("127.0.0.5"), "127.0.0.0/8 loopback address");
	assert_string_equal(unusable("169.254.1.1"), "169.254.0.0/16 link-local address");
	assert_string_equal(unusable("224.1.2.3"), "224.0.0.0/4 multicast address");
	assert_string_equal(unusable("239.255.255.255"), "224.0.0.0/4 multicast address");
	assert_string_equal(unusable("240.0.0.1"), "240.0.0.0/4 reserved address");
	assert_string_equal(unusable("255.255.255.255"), "255.255.255.255/32 limited broadcast address");
	assert_string_equal(unusable("::"), "::/128 unspecified address");
	assert_string_equal(unusable("::1"), "::1/128 loopback address");
	assert_string_equal(unusable("fe80::1"), "fe80::/10 link-local address");
	assert_string_equal(unusable("febf::1"), "fe80::/10 link-local address");
	assert_string_equal(unusable("ff02::1"), "ff00::/8 multicast address");
	/* Their neighbours may be VIPAs. */
	assert_string_equal(unusable("1.0.0.0"), "");
	assert_string_equal(unusable("126.255.255.255"), "");
	assert_string_equal(unusable("128.0.0.0"), "");
	assert_string_equal(unusable("169.253.255.255"), "");
	assert_string_equal(unusable("169.255.0.0"), "");
	assert_string_equal(unusable("223.255.255.255"), "");
	assert_string_equal(unusable("10.1.1.5"), "");
	assert_string_equal(unusable("::2"), "");
	assert_string_equal(unusable("fec0::1"), "");
	assert_string_equal(unusable("fe7f::1"), "");
	assert_string_equal(unusable("fd00:1::5"), "");
	/* dv_addr_parse turns ::ffff:a.b.c.d into IPv4; an IPv6 address in
	 * the block that reaches dvipad otherwise is refused. */
	assert_string_equal(unusable("::ffff:127.0.0.1"), "127.0.0.0/8 loopback address");
	assert_string_equal(unusable("::ffff:10.1.1.5"), "");
	raw.bytes[10] = raw.bytes[11] = 0xff;
	raw.bytes[12] = 10;
	assert_non_null(dv_addr_unusable(&raw));
	assert_string_equal(dv_addr_unusable(&raw)->what, "IPv4-mapped address");

	/* Ranges: in a block, or overlapping one. */
	assert_string_equal(unusable("127.0.0.0/8"), "127.0.0.0/8 loopback address");
	assert_string_equal(unusable("127.1.0.0/16"), "127.0.0.0/8 loopback address");
	assert_string_equal(unusable("0.0.0.0/0"), "0.0.0.0/8 \"this network\" address");
	assert_string_equal(unusable("224.0.0.0/3"), "224.0.0.0/4 multicast address");
	assert_string_equal(unusable("240.0.0.0/4"), "240.0.0.0/4 reserved address");
	assert_string_equal(unusable("255.255.255.0/24"), "240.0.0.0/4 reserved address");
	assert_string_equal(unusable("96.0.0.0/3"), "127.0.0.0/8 loopback address");
	assert_string_equal(unusable("169.0.0.0/8"), "169.254.0.0/16 link-local address");
	assert_string_equal(unusable("::/0"), "::ffff:0.0.0.0/96 IPv4-mapped address");
	assert_string_equal(unusable("::/64"), "::ffff:0.0.0.0/96 IPv4-mapped address");
	assert_string_equal(unusable("fe00::/7"), "fe80::/10 link-local address");
	assert_string_equal(unusable("ff00::/8"), "ff00::/8 multicast address");
	assert_string_equal(unusable("8.0.0.0/8"), "");
	assert_string_equal(unusable("128.0.0.0/3"), "");
	assert_string_equal(unusable("128.0.0.0/2"), "169.254.0.0/16 link-local address");
	assert_string_equal(unusable("2000::/3"), "");
	assert_string_equal(unusable("fc00::/7"), "");
}

static struct dv_prefix P(const char *s) {
	struct dv_prefix p;

	assert_int_equal(dv_prefix_parse(s, &p), 0);
	return p;
}

/* The range table the preload shim reads: containment over every length in
 * use, both families, rewrites in place, and a half-written table. */
static void
test_rangetab(void **state)
{
	static struct dv_rangetab t;
	const struct dv_prefix p[] = {P("10.1.1.0/24"),	      P("10.1.1.128/25"), P("192.0.2.160/27"),
				      P("2001:db8::1:0/112"), P("fd00::/8"),	  P("198.51.100.7/32"),
				      P("32.0.0.0/7")};
	const struct dv_addr a = A("10.1.1.5");
	char path[32];

	assert_int_equal(dv_rangetab_lookup(&t, &a), -EBADMSG); /* never written */
	assert_int_equal(dv_rangetab_write(&t, p, sizeof(p) / sizeof(p[0])), 0);
	assert_int_equal(dv_rangetab_lookup(&t, &a), 1);
	for (const char *const *s = (const char *const[]){"10.1.1.255", "192.0.2.160", "192.0.2.191", "198.51.100.7",
							  "2001:db8::1:ffff", "fd12::1", "33.1.2.3", NULL};
	     *s; s++) {
		struct dv_addr x = A(*s);

		assert_int_equal(dv_rangetab_lookup(&t, &x), 1);
	}
	for (const char *const *s =
		     (const char *const[]){"10.1.2.1", "192.0.2.159", "192.0.2.192", "198.51.100.8", "2001:db8::2:1",
					   "fe00::1", "::ffff:10.1.1.5", "34.0.0.1", NULL};
	     *s; s++) {
		struct dv_addr x = A(*s);

		/* ::ffff:10.1.1.5 parses as IPv4: in the table */
		assert_int_equal(dv_rangetab_lookup(&t, &x), strcmp(*s, "::ffff:10.1.1.5") == 0);
	}

	/* Rewritten in place: the old ranges are gone. */
	assert_int_equal(dv_rangetab_write(&t, &p[2], 1), 0);
	assert_int_equal(dv_rangetab_lookup(&t, &a), 0);
	assert_int_equal(dv_rangetab_write(&t, NULL, 0), 0);
	assert_int_equal(dv_rangetab_lookup(&t, &a), 0);

	/* A writer that died half way: readers give up, the next write heals. */
	t.hdr.seq |= 1;
	assert_int_equal(dv_rangetab_lookup(&t, &a), -EAGAIN);
	assert_int_equal(dv_rangetab_write(&t, p, 1), 0);
	assert_int_equal(t.hdr.seq & 1, 0);
	assert_int_equal(dv_rangetab_lookup(&t, &a), 1);

	/* Refused before p is read. */
	assert_int_equal(dv_rangetab_write(&t, p, DV_RANGETAB_MAX + 1), -ENOSPC);

	assert_int_equal(dv_rangetab_path("/run/dvipa/dvipad.sock", path, sizeof(path)), 0);
	assert_string_equal(path, "/run/dvipa/dvipad.sock.ranges");
	assert_int_equal(dv_rangetab_path("/run/dvipa/dvipad.sock", path, 29), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_format), cmocka_unit_test(test_prefix),  cmocka_unit_test(test_mask),
		cmocka_unit_test(test_cmp_sockaddr), cmocka_unit_test(test_addrset), cmocka_unit_test(test_unusable),
		cmocka_unit_test(test_rangetab),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
