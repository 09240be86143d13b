/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Example descriptions of distributed VIPAs through dist_rules.c, for the
 * golden ruleset tests (tests/rules/NAME.nft) and for loading them into a
 * kernel (tests/system/test_dist_rules.py).
 *
 *   dist-rules-example NAME          the table
 *   dist-rules-example NAME SERVICE  the slot-map update of one service
 *   dist-rules-example --list        the names
 *
 * Topology the examples assume: the distributor n1 on eth0, n2 on the same
 * link (MAC 02:00:00:00:00:02), n3 behind next hop 192.0.2.3 / 2001:db8::3.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_rules.h"
#include "maglev.h"
#include "wlm.h"

#define SEED 0x5eed1234u
#define MAX_M DV_MAGLEV_M_DEFAULT

static const uint16_t web[] = {80, 443}, one[] = {8080};
static uint32_t slots[8][MAX_M];

static struct dv_dist_target targets4[] = {
	{.name = "n1", .fwd = DV_DIST_FWD_LOCAL},
	{.name = "n2",
	 .fwd = DV_DIST_FWD_ETHER,
	 .ifname = "eth0",
	 .mac = {2, 0, 0, 0, 0, 2},
	 .src_mac = {2, 0, 0, 0, 0, 1}},
	{.name = "n3", .fwd = DV_DIST_FWD_NEXTHOP, .ifname = "eth0"},
};
static struct dv_dist_target targets6[3];

struct example {
	const char *name;
	enum dv_dist_method method;
	int family;
	const char *vipa;
	const uint16_t *ports;
	size_t n_ports;
	uint32_t affinity_s;
	bool distributing;
	uint32_t m;
	uint32_t weights[3]; /* hash methods: Maglev weights; others: slots per target */
	int active;	     /* HOTSTANDBY: the index every slot names */
	uint64_t open[3];    /* WEIGHTEDACTIVE: open connections per target (wlm.c) */
};

static const struct example examples[] = {
	{"basewlm", DV_DIST_BASEWLM, AF_INET, "10.1.1.10", web, 2, 0, true, 13, {1, 1, 1}, 0, {0}},
	{"serverwlm-affinity-v6", DV_DIST_SERVERWLM, AF_INET6, "fd00:1::10", one, 1, 300, true, 13, {2, 1, 0}, 0, {0}},
	{"roundrobin", DV_DIST_ROUNDROBIN, AF_INET, "10.1.1.11", one, 1, 0, true, 3, {1, 1, 1}, 0, {0}},
	{"weightedactive", DV_DIST_WEIGHTEDACTIVE, AF_INET, "10.1.1.12", web, 2, 60, true, 6, {1, 2, 3}, 0, {0}},
	/* n1 has none of 24 connections (fair: 4), n2 12 (fair: 8), n3 12
	 * (fair 12): n1 gets (4 + 4) / 4 = 2 x its weight, n2 12/16, n3 1. */
	{"weightedactive-busy",
	 DV_DIST_WEIGHTEDACTIVE,
	 AF_INET,
	 "10.1.1.12",
	 one,
	 1,
	 0,
	 true,
	 12,
	 {1, 2, 3},
	 0,
	 {0, 12, 12}},
	{"hotstandby-v6", DV_DIST_HOTSTANDBY, AF_INET6, "fd00:1::13", one, 1, 0, true, 2, {0, 0, 0}, 1, {0}},
	{"not-distributing", DV_DIST_BASEWLM, AF_INET, "10.1.1.14", one, 1, 0, false, 13, {1, 1, 1}, 0, {0}},
	{"no-targets", DV_DIST_ROUNDROBIN, AF_INET, "10.1.1.15", one, 1, 0, true, 1, {0, 0, 0}, 0, {0}},
	/* With n2's and n3's SYSPLEXPORTS slices (slices_of). */
	{"sysplexports", DV_DIST_BASEWLM, AF_INET, "10.1.1.17", one, 1, 0, true, 13, {1, 1, 1}, 0, {0}},
	{"sysplexports-v6", DV_DIST_ROUNDROBIN, AF_INET6, "fd00:1::17", one, 1, 0, true, 3, {1, 1, 1}, 0, {0}},
	/* Not golden (2 x 65,537 slots): loaded to show a full-size table loads. */
	{"maglev-full", DV_DIST_BASEWLM, AF_INET, "10.1.1.16", web, 2, 0, true, MAX_M, {1, 1, 1}, 0, {0}},
};

#define N_EXAMPLES (sizeof(examples) / sizeof(examples[0]))

static int build(size_t e, struct dv_dist_service *ret)
{
	const struct example *x = &examples[e];
	struct dv_maglev_target mt[3] = {{"n1", x->weights[0]}, {"n2", x->weights[1]}, {"n3", x->weights[2]}};
	uint32_t *s = slots[e % 8];
	uint32_t n = 0;

	memset(ret, 0, sizeof(*ret));
	if (dv_addr_parse(x->vipa, &ret->vipa) < 0)
		return -EINVAL;
	ret->ports = x->ports;
	ret->n_ports = x->n_ports;
	ret->method = x->method;
	ret->seed = SEED;
	ret->affinity_s = x->affinity_s;
	ret->distributing = x->distributing;
	ret->targets = x->family == AF_INET6 ? targets6 : targets4;
	ret->n_targets = strcmp(x->name, "no-targets") == 0 ? 0 : 3;
	ret->m = x->m;
	ret->slots = s;
	if (x->method == DV_DIST_HOTSTANDBY) {
		for (uint32_t i = 0; i < x->m; i++)
			s[i] = (uint32_t)x->active;
		return 0;
	}
	if (x->method == DV_DIST_BASEWLM || x->method == DV_DIST_SERVERWLM)
		return dv_maglev_build(mt, 3, x->m, SEED, s);
	if (x->method == DV_DIST_WEIGHTEDACTIVE) {
		uint32_t count[3];

		/* As dist.c shares them, from the weights and the counts. */
		dv_wlm_active((const unsigned[]){x->weights[0], x->weights[1], x->weights[2]}, x->open, 3, x->m, count);
		dv_wlm_active_slots(count, 3, x->m, s);
		return 0;
	}
	/* Draws: each target as many slots as its weight. */
	for (uint32_t t = 0; t < ret->n_targets; t++)
		for (uint32_t k = 0; k < x->weights[t]; k++)
			s[n++] = t;
	while (n < x->m)
		s[n++] = DV_MAGLEV_NONE;
	return 0;
}

/* The sysplexports examples: n1 distributes, n2 (same link) and n3 (next
 * hop) have slices of the ports. */
static size_t slices_of(const struct dv_dist_service *svc, struct dv_dist_slice ret[static 2])
{
	for (size_t i = 0; i < 2; i++)
		ret[i] = (struct dv_dist_slice){.vipa = svc->vipa,
						.lo = (uint16_t)(33792 + 1024 * i),
						.hi = (uint16_t)(34815 + 1024 * i),
						.distributing = true,
						.target = svc->targets[1 + i]};
	return 2;
}

int main(int argc, char **argv)
{
	struct dv_dist_service svc;
	struct dv_dist_ruleset rs = {.ifname = "eth0", .n_services = 1, .services = &svc};
	struct dv_dist_slice slices[2];
	size_t e;
	int r;

	memcpy(targets6, targets4, sizeof(targets6));
	dv_addr_parse("192.0.2.3", &targets4[2].next);
	dv_addr_parse("2001:db8::3", &targets6[2].next);
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (e = 0; e < N_EXAMPLES; e++)
			puts(examples[e].name);
		return 0;
	}
	for (e = 0; argc >= 2 && e < N_EXAMPLES; e++)
		if (strcmp(argv[1], examples[e].name) == 0)
			break;
	if (argc < 2 || argc > 3 || e == N_EXAMPLES) {
		fprintf(stderr, "usage: dist-rules-example NAME [0] | --list\n");
		return 2;
	}
	r = build(e, &svc);
	if (strncmp(examples[e].name, "sysplexports", 12) == 0) {
		rs.n_slices = slices_of(&svc, slices);
		rs.slices = slices;
	}
	if (r == 0)
		r = argc == 3 ? dv_dist_rules_write_slots(&rs, strtoul(argv[2], NULL, 10), stdout)
			      : dv_dist_rules_write(&rs, stdout);
	if (r < 0) {
		fprintf(stderr, "dist-rules-example: %s: %s\n", examples[e].name, strerror(-r));
		return 1;
	}
	return 0;
}
