/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One distributed VIPA through maglev.c, dist_rules.c and kernel_nft.c
 * into the kernel of the caller's network namespace, for
 * tests/system/test_dist_dataplane.py:
 *
 *   dist-apply [--slots] [--only NAME] [--table] [--roundrobin] IFNAME VIPA PORT SEED M TARGET...
 *
 * BASEWLM with equal weights, or with --roundrobin ROUNDROBIN over the
 * targets in order (M is then their number).
 * TARGET is NAME=local or NAME=ether:IFNAME:MAC:SRCMAC, sorted by NAME.
 * --slots replaces only the slot map (the pins stay); --only NAME gives
 * every other target weight 0; --table prints "SLOT TARGET-NAME" lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_nft.h"
#include "maglev.h"

#define MAX_TARGETS 8

static int parse_mac(const char *s, uint8_t m[6])
{
	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6 ? 0 : -EINVAL;
}

/* NAME=local or NAME=ether:IFNAME:MAC:SRCMAC (MACs with colons). */
static int parse_target(char *arg, struct dv_dist_target *t)
{
	char *eq = strchr(arg, '='), *spec, *ifname, *mac;

	if (!eq)
		return -EINVAL;
	*eq = 0;
	t->name = arg;
	spec = eq + 1;
	if (strcmp(spec, "local") == 0) {
		t->fwd = DV_DIST_FWD_LOCAL;
		return 0;
	}
	if (strncmp(spec, "ether:", 6) != 0)
		return -EINVAL;
	ifname = spec + 6;
	mac = strchr(ifname, ':');
	if (!mac || strlen(mac + 1) != 35)
		return -EINVAL;
	*mac++ = 0;
	mac[17] = 0;
	t->fwd = DV_DIST_FWD_ETHER;
	t->ifname = ifname;
	return parse_mac(mac, t->mac) < 0 || parse_mac(mac + 18, t->src_mac) < 0 ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	struct dv_dist_target targets[MAX_TARGETS] = {0};
	struct dv_maglev_target mt[MAX_TARGETS];
	struct dv_dist_service svc = {.method = DV_DIST_BASEWLM, .distributing = true};
	struct dv_dist_ruleset rs = {.n_services = 1, .services = &svc};
	const char *only = NULL;
	bool slots_only = false, table = false;
	struct dv_knft *k = NULL;
	char *err = NULL;
	uint32_t *slots;
	uint16_t port;
	int i = 1, r;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--slots") == 0)
			slots_only = true;
		else if (strcmp(argv[i], "--table") == 0)
			table = true;
		else if (strcmp(argv[i], "--roundrobin") == 0)
			svc.method = DV_DIST_ROUNDROBIN;
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else
			break;
	}
	if (argc - i < 6 || argc - i - 5 > MAX_TARGETS || dv_addr_parse(argv[i + 1], &svc.vipa) < 0) {
		fprintf(stderr,
			"usage: dist-apply [--slots] [--only NAME] [--table] IFNAME VIPA PORT SEED M TARGET...\n");
		return 2;
	}
	rs.ifname = argv[i];
	port = (uint16_t)strtoul(argv[i + 2], NULL, 0);
	svc.ports = &port;
	svc.n_ports = 1;
	svc.seed = (uint32_t)strtoul(argv[i + 3], NULL, 0);
	svc.m = (uint32_t)strtoul(argv[i + 4], NULL, 0);
	svc.n_targets = (size_t)(argc - i - 5);
	svc.targets = targets;
	for (size_t t = 0; t < svc.n_targets; t++) {
		if (parse_target(argv[i + 5 + (int)t], &targets[t]) < 0) {
			fprintf(stderr, "dist-apply: bad target \"%s\"\n", argv[i + 5 + (int)t]);
			return 2;
		}
		mt[t] = (struct dv_maglev_target){targets[t].name, !only || strcmp(only, targets[t].name) == 0};
	}
	slots = calloc(svc.m ? svc.m : 1, sizeof(*slots));
	if (!slots)
		return 1;
	svc.slots = slots;
	if (svc.method == DV_DIST_ROUNDROBIN) {
		svc.m = (uint32_t)svc.n_targets;
		for (uint32_t s = 0; s < svc.m; s++)
			slots[s] = s;
		r = 0;
	} else {
		r = dv_maglev_build(mt, svc.n_targets, svc.m, svc.seed, slots);
	}
	if (r == 0)
		r = dv_knft_new(&k);
	if (r == 0)
		r = slots_only ? dv_knft_set_slots(k, &rs, NULL, &err) : dv_knft_replace(k, &rs, &err);
	if (r < 0)
		fprintf(stderr, "dist-apply: %s\n", err ? err : strerror(-r));
	else if (table)
		for (uint32_t s = 0; s < svc.m; s++)
			printf("%u %s\n", s, slots[s] == DV_MAGLEV_NONE ? "-" : targets[slots[s]].name);
	free(err);
	free(slots);
	dv_knft_free(k);
	return r < 0 ? 1 : 0;
}
