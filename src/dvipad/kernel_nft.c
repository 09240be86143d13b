/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libnftables runs a buffer of commands as one netlink batch: all of it
 * commits or none does. Output and errors are buffered, never printed, so
 * that the caller logs them once.
 */
#include "kernel_nft.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

struct dv_knft {
	struct nft_ctx *nft;
};

int dv_knft_new(struct dv_knft **ret)
{
	struct dv_knft *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!k->nft || nft_ctx_buffer_output(k->nft) < 0 || nft_ctx_buffer_error(k->nft) < 0) {
		dv_knft_free(k);
		return -ENOMEM;
	}
	*ret = k;
	return 0;
}

struct dv_knft *dv_knft_free(struct dv_knft *k)
{
	if (!k)
		return NULL;
	if (k->nft)
		nft_ctx_free(k->nft);
	free(k);
	return NULL;
}

/* Run text as one transaction; nft's complaint, trimmed, in *ret_error. */
static int run(struct dv_knft *k, const char *text, char **ret_error)
{
	const char *err;
	int r;

	if (ret_error)
		*ret_error = NULL;
	r = nft_run_cmd_from_buffer(k->nft, text);
	err = nft_ctx_get_error_buffer(k->nft);
	if (r == 0)
		return 0;
	if (ret_error) {
		size_t n = err ? strlen(err) : 0;

		while (n && err[n - 1] == '\n')
			n--;
		*ret_error = n ? strndup(err, n) : strdup("nft failed without a message");
	}
	return -EIO;
}

/* The text a writer produces, in a buffer of its own. */
static int text_of(const struct dv_dist_ruleset *rs, size_t i, bool slots, const char *prefix, char **ret)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r;

	if (!f)
		return -ENOMEM;
	fputs(prefix, f);
	r = slots ? dv_dist_rules_write_slots(rs, i, f) : dv_dist_rules_write(rs, f);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0)
		return r;
	*ret = TAKE_PTR(text);
	return 0;
}

int dv_knft_replace(struct dv_knft *k, const struct dv_dist_ruleset *rs, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	int r;

	/* "add" first so that "delete" never fails for a missing table. */
	r = text_of(rs, 0, false, "add table netdev " DV_DIST_TABLE "\ndelete table netdev " DV_DIST_TABLE "\n", &text);
	if (r < 0) {
		if (ret_error)
			*ret_error = NULL;
		return r;
	}
	return run(k, text, ret_error);
}

int dv_knft_set_slots(struct dv_knft *k, const struct dv_dist_ruleset *rs, size_t i, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	int r = text_of(rs, i, true, "", &text);

	if (r < 0) {
		if (ret_error)
			*ret_error = NULL;
		return r;
	}
	return run(k, text, ret_error);
}

int dv_knft_remove(struct dv_knft *k, char **ret_error)
{
	return run(k, "add table netdev " DV_DIST_TABLE "\ndelete table netdev " DV_DIST_TABLE "\n", ret_error);
}
