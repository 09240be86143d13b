/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The nft commands on stdin through libnftables, in one transaction, in the
 * caller's network namespace: what the system tests use to load and list
 * rulesets without the nft program (which dvipa does not need).
 *
 *   nft-run [-j] [-c] < commands     -j: JSON output; -c: check only
 */
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct nft_ctx *nft;
	char *buf = NULL;
	size_t cap = 0, len = 0;
	bool json = false, check = false;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-j") == 0)
			json = true;
		else if (strcmp(argv[i], "-c") == 0)
			check = true;
		else {
			fprintf(stderr, "usage: nft-run [-j] [-c] < commands\n");
			return 2;
		}
	}
	for (;;) {
		size_t n;

		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);

			if (!nb)
				return 1;
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, stdin);
		if (n == 0)
			break;
		len += n;
	}
	if (!buf)
		buf = calloc(1, 1);
	buf[len] = 0;
	nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft)
		return 1;
	if (json)
		nft_ctx_output_set_flags(nft, NFT_CTX_OUTPUT_JSON);
	nft_ctx_set_dry_run(nft, check);
	r = nft_run_cmd_from_buffer(nft, buf);
	nft_ctx_free(nft);
	free(buf);
	return r == 0 ? 0 : 1;
}
