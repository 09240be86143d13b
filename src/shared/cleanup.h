/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Scope-bound cleanup (systemd's idiom): a variable declared
 * `_cleanup_free_ char *p = NULL;` is freed when it goes out of scope; hand
 * it on with TAKE_PTR(p). The only copy of these macros in the tree.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* free(p), and NULL for `x = dv_mfree(x);`. */
static inline void *dv_mfree(void *p)
{
	free(p);
	return NULL;
}

static inline void dv_freep(void *p)
{
	free(*(void **)p);
}

static inline void dv_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void dv_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

/* Run f(&var) when var goes out of scope. */
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(dv_freep)
#define _cleanup_close_ _cleanup_(dv_closep)
#define _cleanup_fclose_ _cleanup_(dv_fclosep)

/* The value of p, and p set to NULL (so its cleanup does nothing). */
#define TAKE_PTR(p)                                                                                                    \
	({                                                                                                             \
		__typeof__(p) _p = (p);                                                                                \
		(p) = NULL;                                                                                            \
		_p;                                                                                                    \
	})

/* The value of fd, and fd set to -1. */
#define TAKE_FD(fd)                                                                                                    \
	({                                                                                                             \
		int _fd = (fd);                                                                                        \
		(fd) = -1;                                                                                             \
		_fd;                                                                                                   \
	})
