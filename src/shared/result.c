/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "result.h"

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

	if (r < 0)
		r = -r;
	if ((unsigned)r >= sizeof(names) / sizeof(names[0]) || !names[r])
		return "unknown";
	return names[r];
}
