/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The results of requests: names and texts, one table (result.h). */
#include "result.h"

#include <limits.h>
#include <stddef.h>

/* texts[|r|], or unknown outside the table. */
static const char *lookup(const char *const *texts, size_t n, int r, const char *unknown)
{
	if (r < 0)
		r = r == INT_MIN ? INT_MAX : -r;
	if ((size_t)r >= n || !texts[r])
		return unknown;
	return texts[r];
}

const char *dv_result_name(int r)
{
	static const char *const names[] = {
		[DV_R_OK] = "ok",
		[DV_R_PENDING] = "pending",
		[DV_R_BADREQ] = "bad-request",
		[DV_R_NORANGE] = "no-range",
		[DV_R_HELD] = "held",
		[DV_R_PERM] = "permission-denied",
		[DV_R_UNREACH] = "unreachable",
		[DV_R_INUSE] = "in-use",
		[DV_R_NOTHELD] = "not-held",
		[DV_R_LIMIT] = "limit",
		[DV_R_NOQUORUM] = "no-quorum",
		[DV_R_KERNEL] = "kernel",
		[DV_R_INTERNAL] = "internal",
		[DV_R_LEFT] = "left",
	};

	return lookup(names, sizeof(names) / sizeof(names[0]), r, "unknown");
}

const char *dv_result_text(int r)
{
	static const char *const texts[] = {
		[DV_R_OK] = "Success",
		[DV_R_PENDING] = "Standby registered, waiting to be granted",
		[DV_R_BADREQ] = "Invalid argument or malformed request",
		[DV_R_NORANGE] = "Address is in no VIPARANGE of this node",
		[DV_R_HELD] = "Address is held elsewhere or reserved",
		[DV_R_PERM] = "Permission denied by the range's allow list",
		[DV_R_UNREACH] = "dvipad cannot be reached",
		[DV_R_INUSE] = "Another host on the link uses the address",
		[DV_R_NOTHELD] = "Address is not held by this handle",
		[DV_R_LIMIT] = "A capacity limit of dvipad was reached",
		[DV_R_NOQUORUM] = "The cluster partition is not quorate",
		[DV_R_KERNEL] = "The kernel refused the address",
		[DV_R_INTERNAL] = "Internal error",
		[DV_R_LEFT] = "The node has left the cluster group (dvipactl leave)",
	};

	return lookup(texts, sizeof(texts) / sizeof(texts[0]), r, "Unknown error");
}

const char *dv_result_brief(uint32_t r)
{
	switch (r) {
	case DV_R_BADREQ:
		return "refused as a bad request";
	case DV_R_NORANGE:
		return "in no range";
	case DV_R_HELD:
		return "held elsewhere";
	case DV_R_PERM:
		return "permission denied";
	case DV_R_INUSE:
		return "in use by another host";
	case DV_R_LIMIT:
		return "dvipad limit reached";
	case DV_R_NOQUORUM:
		return "no quorum";
	case DV_R_KERNEL:
		return "the kernel refused the address";
	default:
		return "refused by dvipad";
	}
}
