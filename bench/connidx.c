/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * connidx: dvipad's connection index (src/dvipad/kernel_connidx.c) on its
 * own, for bench/connidx-cost.sh and for checking its counts by hand.
 *
 *   connidx
 *       Attaches the index for this network namespace and prints "ready";
 *       then, for each address read from stdin (one per line), prints
 *       "ADDRESS COUNT" (the connections counted on it), or "ADDRESS
 *       error: ..." when the index cannot tell. The index goes at the end
 *       of stdin (or when the program is killed).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"

int main(void)
{
	struct dv_connidx *x;
	char why[512], line[256];
	int r = dv_connidx_open(&x, why, sizeof(why));

	if (r < 0) {
		fprintf(stderr, "connidx: %s\n", why);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		struct dv_addr a = {0};
		uint64_t n = 0;

		line[strcspn(line, "\n")] = '\0';
		if (dv_addr_parse(line, &a) < 0) {
			printf("%s error: not an address\n", line);
		} else if ((r = dv_connidx_count(x, &a, &n)) < 0) {
			printf("%s error: %s\n", line, strerror(-r));
		} else {
			printf("%s %llu\n", line, (unsigned long long)n);
		}
		fflush(stdout);
	}
	dv_connidx_free(x);
	return 0;
}
