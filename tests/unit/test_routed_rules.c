/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The nftables text of ROUTED ranges (routed_rules.c), byte for byte: the
 * tables libnftables loads (tests/system/test_routed.py loads them into a
 * kernel), the refresh, an activation, the gate closing and shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "routed_rules.h"

static char *text_of(void (*fn)(FILE *f, const struct dv_prefix *p, size_t n, unsigned lease_s),
		     const struct dv_prefix *p, size_t n, unsigned lease_s)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	fn(f, p, n, lease_s);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static struct dv_prefix pfx(const char *s)
{
	struct dv_prefix p;

	assert_int_equal(dv_prefix_parse(s, &p), 0);
	return p;
}

static void test_tables(void **state)
{
	const struct dv_prefix p[] = {pfx("10.9.0.0/16"), pfx("fd00:5ca1::/64"), pfx("192.0.2.128/25")};
	char *t;

	(void)state;
	t = text_of(dv_routed_rules_write, p, 3, 30);
	assert_string_equal(t,
			    "add table ip dvipa_routed\n"
			    "add table arp dvipa_routed\n"
			    "add table ip6 dvipa_routed\n"
			    "delete table ip dvipa_routed\n"
			    "delete table arp dvipa_routed\n"
			    "delete table ip6 dvipa_routed\n"
			    "table ip dvipa_routed {\n"
			    "\tset alive {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t}\n"
			    "\tset active {\n\t\ttype ipv4_addr\n\t}\n"
			    "\tchain refuse {\n"
			    "\t\tiifname \"lo\" icmp type destination-unreachable accept\n"
			    "\t\tiifname \"lo\" reject with icmp admin-prohibited\n"
			    "\t\tdrop\n\t}\n"
			    "\tchain input {\n\t\ttype filter hook input priority -300; policy accept;\n"
			    "\t\tip daddr 10.9.0.0/16 ip daddr & 255.255.0.0 != @alive jump refuse\n"
			    "\t\tip daddr 10.9.0.0/16 ip daddr != @active jump refuse\n"
			    "\t\tip daddr 192.0.2.128/25 ip daddr & 255.255.255.128 != @alive jump refuse\n"
			    "\t\tip daddr 192.0.2.128/25 ip daddr != @active jump refuse\n"
			    "\t}\n}\n"
			    "table arp dvipa_routed {\n"
			    "\tset alive {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t}\n"
			    "\tset active {\n\t\ttype ipv4_addr\n\t}\n"
			    "\tchain input {\n\t\ttype filter hook input priority -300; policy accept;\n"
			    "\t\tarp operation request arp daddr ip 10.9.0.0/16 arp daddr ip & 255.255.0.0 != @alive "
			    "drop\n"
			    "\t\tarp operation request arp daddr ip 10.9.0.0/16 arp daddr ip != @active drop\n"
			    "\t\tarp operation request arp daddr ip 192.0.2.128/25 arp daddr ip & 255.255.255.128 != "
			    "@alive drop\n"
			    "\t\tarp operation request arp daddr ip 192.0.2.128/25 arp daddr ip != @active drop\n"
			    "\t}\n}\n"
			    "table ip6 dvipa_routed {\n"
			    "\tset alive {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t}\n"
			    "\tset active {\n\t\ttype ipv6_addr\n\t}\n"
			    "\tchain refuse {\n"
			    "\t\tiifname \"lo\" icmpv6 type destination-unreachable accept\n"
			    "\t\tiifname \"lo\" reject with icmpv6 admin-prohibited\n"
			    "\t\tdrop\n\t}\n"
			    "\tchain input {\n\t\ttype filter hook input priority -300; policy accept;\n"
			    "\t\tip6 daddr fd00:5ca1::/64 ip6 daddr & ffff:ffff:ffff:ffff:: != @alive jump refuse\n"
			    "\t\tip6 daddr fd00:5ca1::/64 ip6 daddr != @active jump refuse\n"
			    "\t}\n}\n"
			    "flush set ip dvipa_routed alive\n"
			    "add element ip dvipa_routed alive { 10.9.0.0 timeout 30s, 192.0.2.128 timeout 30s }\n"
			    "flush set arp dvipa_routed alive\n"
			    "add element arp dvipa_routed alive { 10.9.0.0 timeout 30s, 192.0.2.128 timeout 30s }\n"
			    "flush set ip6 dvipa_routed alive\n"
			    "add element ip6 dvipa_routed alive { fd00:5ca1:: timeout 30s }\n");
	free(t);

	/* A /32 range: the mask keeps every bit. */
	const struct dv_prefix one = pfx("10.1.2.3/32");
	t = text_of(dv_routed_alive_write, &one, 1, 7);
	assert_string_equal(t, "flush set ip dvipa_routed alive\n"
			       "add element ip dvipa_routed alive { 10.1.2.3 timeout 7s }\n"
			       "flush set arp dvipa_routed alive\n"
			       "add element arp dvipa_routed alive { 10.1.2.3 timeout 7s }\n");
	free(t);
	/* IPv6 ranges alone: the IPv4 tables' sets stay as they are. */
	t = text_of(dv_routed_alive_write, &p[1], 1, 7);
	assert_string_equal(t, "flush set ip6 dvipa_routed alive\n"
			       "add element ip6 dvipa_routed alive { fd00:5ca1:: timeout 7s }\n");
	free(t);
	/* No range: no refresh (an empty element list is a syntax error). */
	t = text_of(dv_routed_alive_write, p, 0, 7);
	assert_string_equal(t, "");
	free(t);
}

static void test_changes(void **state)
{
	struct dv_addr a, a6;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	(void)state;
	assert_int_equal(dv_addr_parse("10.9.3.4", &a), 0);
	assert_int_equal(dv_addr_parse("fd00:5ca1::7", &a6), 0);
	dv_routed_elem_write(f, &a, true);
	dv_routed_elem_write(f, &a, false);
	dv_routed_elem_write(f, &a6, true);
	dv_routed_flush_write(f);
	dv_routed_remove_write(f);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(buf, "add element ip dvipa_routed active { 10.9.3.4 }\n"
				 "add element arp dvipa_routed active { 10.9.3.4 }\n"
				 "delete element ip dvipa_routed active { 10.9.3.4 }\n"
				 "delete element arp dvipa_routed active { 10.9.3.4 }\n"
				 "add element ip6 dvipa_routed active { fd00:5ca1::7 }\n"
				 "flush set ip dvipa_routed active\n"
				 "flush set arp dvipa_routed active\n"
				 "flush set ip6 dvipa_routed active\n"
				 "delete table ip dvipa_routed\n"
				 "delete table arp dvipa_routed\n"
				 "delete table ip6 dvipa_routed\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
