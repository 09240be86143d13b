/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Outcomes of requests, shared by the engine, the control protocol,
 * libdvipa (as DVIPA_E_* in <dvipa.h>, same numbers) and dvipactl's exit codes.
 */
#pragma once

#include <stdint.h>

enum dv_result {
	DV_R_OK = 0,
	DV_R_PENDING = 1,   /* standby registered; a GRANTED event follows */
	DV_R_BADREQ = 2,    /* malformed request or bad argument */
	DV_R_NORANGE = 3,   /* the address is in no range of this node */
	DV_R_HELD = 4,	    /* held elsewhere, UNIQUE, or a define of another node */
	DV_R_PERM = 5,	    /* the caller's uid/gid is not allowed by the range */
	DV_R_UNREACH = 6,   /* the daemon cannot be reached (client side only) */
	DV_R_INUSE = 7,	    /* another host on the link answers for the address */
	DV_R_NOTHELD = 8,   /* release/deactivate of something not held */
	DV_R_LIMIT = 9,	    /* a capacity limit was reached */
	DV_R_NOQUORUM = 10, /* this node's partition is not quorate */
	DV_R_KERNEL = 11,   /* the kernel refused the change */
	DV_R_INTERNAL = 12,
	DV_R_LEFT = 13, /* the node left the group (dvipactl leave) */
};

/* A short lowercase name ("held", "no-range", ...), for JSON and logs. */
const char *dv_result_name(int r);
/* The text of a result, or of its negation ("Address is held elsewhere or
 * reserved"): dvipa_strerror(). "Unknown error" for other numbers. */
const char *dv_result_text(int r);
/* A refusal in a few lowercase words ("held elsewhere", "in no range"), for
 * the preload shim's debug lines; "refused by dvipad" for other numbers. */
const char *dv_result_brief(uint32_t r);
