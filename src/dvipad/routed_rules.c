// SPDX-License-Identifier: GPL-2.0-or-later
#include "routed_rules.h"

#include <arpa/inet.h>

static const char *const families[] = {"ip", "arp"};

static void mask_fmt(unsigned len, char buf[static INET_ADDRSTRLEN])
{
	struct in_addr m = {.s_addr = htonl(len ? ~0u << (32 - len) : 0)};

	inet_ntop(AF_INET, &m, buf, INET_ADDRSTRLEN);
}

void dv_routed_remove_write(FILE *f)
{
	for (size_t i = 0; i < 2; i++)
		fprintf(f, "delete table %s %s\n", families[i], DV_ROUTED_TABLE);
}

void dv_routed_rules_write(FILE *f, const struct dv_prefix *p, size_t n, unsigned lease_s)
{
	char pb[DV_ADDR_STRLEN], mb[INET_ADDRSTRLEN];

	/* "add" then "delete": one transaction whether or not they exist. */
	for (size_t i = 0; i < 2; i++)
		fprintf(f, "add table %s %s\n", families[i], DV_ROUTED_TABLE);
	dv_routed_remove_write(f);
	for (size_t t = 0; t < 2; t++) {
		/* ARP: requests only; the kernel answers them for any address
		 * of a local route, replies and announcements pass. */
		const char *key = t == 0 ? "ip daddr" : "arp daddr ip";
		const char *match = t == 0 ? "" : "arp operation request ";

		fprintf(f, "table %s %s {\n", families[t], DV_ROUTED_TABLE);
		fputs("\tset alive {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t}\n", f);
		fputs("\tset active {\n\t\ttype ipv4_addr\n\t}\n", f);
		/* A program of this node gets an error at once rather than
		 * silence: the ICMP error is for an address of the range too
		 * (the source of a local connection to it is itself). */
		if (t == 0)
			fputs("\tchain refuse {\n"
			      "\t\tiifname \"lo\" icmp type destination-unreachable accept\n"
			      "\t\tiifname \"lo\" reject with icmp admin-prohibited\n"
			      "\t\tdrop\n\t}\n",
			      f);
		fputs("\tchain input {\n\t\ttype filter hook input priority -300; policy accept;\n", f);
		for (size_t i = 0; i < n; i++) {
			const char *verdict = t == 0 ? "jump refuse" : "drop";

			dv_prefix_fmt(&p[i], pb);
			mask_fmt(p[i].len, mb);
			fprintf(f, "\t\t%s%s %s %s & %s != @alive %s\n", match, key, pb, key, mb, verdict);
			fprintf(f, "\t\t%s%s %s %s != @active %s\n", match, key, pb, key, verdict);
		}
		fputs("\t}\n}\n", f);
	}
	dv_routed_alive_write(f, p, n, lease_s);
}

void dv_routed_alive_write(FILE *f, const struct dv_prefix *p, size_t n, unsigned lease_s)
{
	char ab[DV_ADDR_STRLEN];

	/* Flush and add rather than add alone: a kernel before element
	 * updates (Linux 6.10) keeps the old timeout of an existing element. */
	for (size_t t = 0; t < 2 && n > 0; t++) {
		fprintf(f, "flush set %s %s alive\n", families[t], DV_ROUTED_TABLE);
		fprintf(f, "add element %s %s alive {", families[t], DV_ROUTED_TABLE);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%s %s timeout %us", i ? "," : "", dv_addr_fmt(&p[i].addr, ab), lease_s);
		fputs(" }\n", f);
	}
}

void dv_routed_elem_write(FILE *f, const struct dv_addr *a, bool add)
{
	char ab[DV_ADDR_STRLEN];

	dv_addr_fmt(a, ab);
	for (size_t t = 0; t < 2; t++)
		fprintf(f, "%s element %s %s active { %s }\n", add ? "add" : "delete", families[t], DV_ROUTED_TABLE,
			ab);
}

void dv_routed_flush_write(FILE *f)
{
	for (size_t t = 0; t < 2; t++)
		fprintf(f, "flush set %s %s active\n", families[t], DV_ROUTED_TABLE);
}
