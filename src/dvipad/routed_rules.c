// SPDX-License-Identifier: GPL-2.0-or-later
#include "routed_rules.h"

#include <arpa/inet.h>
#include <string.h>

/* The tables, and the family of the addresses each one filters. */
static const struct {
	const char *name, *key, *set_type;
	int af;
} tables[] = {
	{"ip", "ip daddr", "ipv4_addr", AF_INET},
	/* ARP: requests only; the kernel answers them for any address of a
	 * local route, replies and announcements pass. */
	{"arp", "arp daddr ip", "ipv4_addr", AF_INET},
	/* IPv6 has no table of ND: the kernel answers no solicitation for an
	 * address of a local route, dvipad answers them for the active ones
	 * (kernel_announce.c). */
	{"ip6", "ip6 daddr", "ipv6_addr", AF_INET6},
};
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))

static void mask_fmt(const struct dv_prefix *p, char buf[static DV_ADDR_STRLEN])
{
	struct dv_addr m = {.family = p->addr.family};
	uint8_t *b = m.family == AF_INET ? (uint8_t *)&m.v4 : m.v6.s6_addr;

	for (unsigned i = 0; i < p->len; i++)
		b[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	dv_addr_fmt(&m, buf);
}

void dv_routed_remove_write(FILE *f)
{
	for (size_t i = 0; i < N_TABLES; i++)
		fprintf(f, "delete table %s %s\n", tables[i].name, DV_ROUTED_TABLE);
}

void dv_routed_rules_write(FILE *f, const struct dv_prefix *p, size_t n, unsigned lease_s)
{
	char pb[DV_ADDR_STRLEN], mb[DV_ADDR_STRLEN];

	/* "add" then "delete": one transaction whether or not they exist. */
	for (size_t i = 0; i < N_TABLES; i++)
		fprintf(f, "add table %s %s\n", tables[i].name, DV_ROUTED_TABLE);
	dv_routed_remove_write(f);
	for (size_t t = 0; t < N_TABLES; t++) {
		const char *key = tables[t].key;
		const char *match = strcmp(tables[t].name, "arp") == 0 ? "arp operation request " : "";
		const char *verdict = match[0] ? "drop" : "jump refuse";

		fprintf(f, "table %s %s {\n", tables[t].name, DV_ROUTED_TABLE);
		fprintf(f, "\tset alive {\n\t\ttype %s\n\t\tflags timeout\n\t}\n", tables[t].set_type);
		fprintf(f, "\tset active {\n\t\ttype %s\n\t}\n", tables[t].set_type);
		/* A program of this node gets an error at once rather than
		 * silence: the ICMP error is for an address of the range too
		 * (the source of a local connection to it is itself). */
		if (tables[t].af == AF_INET && !match[0])
			fputs("\tchain refuse {\n"
			      "\t\tiifname \"lo\" icmp type destination-unreachable accept\n"
			      "\t\tiifname \"lo\" reject with icmp admin-prohibited\n"
			      "\t\tdrop\n\t}\n",
			      f);
		else if (tables[t].af == AF_INET6)
			fputs("\tchain refuse {\n"
			      "\t\tiifname \"lo\" icmpv6 type destination-unreachable accept\n"
			      "\t\tiifname \"lo\" reject with icmpv6 admin-prohibited\n"
			      "\t\tdrop\n\t}\n",
			      f);
		fputs("\tchain input {\n\t\ttype filter hook input priority -300; policy accept;\n", f);
		for (size_t i = 0; i < n; i++) {
			if (p[i].addr.family != tables[t].af)
				continue;
			dv_prefix_fmt(&p[i], pb);
			mask_fmt(&p[i], mb);
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
	for (size_t t = 0; t < N_TABLES; t++) {
		bool first = true;

		for (size_t i = 0; i < n; i++) {
			if (p[i].addr.family != tables[t].af)
				continue;
			if (first)
				fprintf(f, "flush set %s %s alive\nadd element %s %s alive {", tables[t].name,
					DV_ROUTED_TABLE, tables[t].name, DV_ROUTED_TABLE);
			fprintf(f, "%s %s timeout %us", first ? "" : ",", dv_addr_fmt(&p[i].addr, ab), lease_s);
			first = false;
		}
		if (!first)
			fputs(" }\n", f);
	}
}

void dv_routed_elem_write(FILE *f, const struct dv_addr *a, bool add)
{
	char ab[DV_ADDR_STRLEN];

	dv_addr_fmt(a, ab);
	for (size_t t = 0; t < N_TABLES; t++)
		if (tables[t].af == a->family)
			fprintf(f, "%s element %s %s active { %s }\n", add ? "add" : "delete", tables[t].name,
				DV_ROUTED_TABLE, ab);
}

void dv_routed_flush_write(FILE *f)
{
	for (size_t t = 0; t < N_TABLES; t++)
		fprintf(f, "flush set %s %s active\n", tables[t].name, DV_ROUTED_TABLE);
}
