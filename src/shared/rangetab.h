/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The range table: the prefixes of this node's VIPARANGEs, published by
 * dvipad in a small file next to its control socket ("SOCKET.ranges") that
 * the preload shim maps read-only. With it the shim knows, without asking
 * dvipad, whether a bind() is to an address inside a range (then it is a
 * claim, whether or not the address exists yet) or not (then it costs a
 * lookup in mapped memory).
 *
 * Layout: struct dv_rangetab_hdr, then DV_RANGETAB_MAX entries, sorted by
 * (family, len, bytes). dvipad rewrites the file in place under a sequence
 * lock (seq odd while it writes); readers copy and retry. The file keeps
 * its inode across dvipad restarts, so an old mapping sees the new table;
 * a reader re-checks the inode now and then in case the file was replaced.
 * Reading is async-signal-safe; libc only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define DV_RANGETAB_MAGIC 0x54525644u /* "DVRT" as little-endian bytes */
#define DV_RANGETAB_VERSION 1
#define DV_RANGETAB_MAX 4096 /* DV_CONF_MAX_STATEMENTS: every range fits */
#define DV_RANGETAB_SUFFIX ".ranges"

struct dv_rangetab_entry {
	uint8_t family;
	uint8_t len;
	uint8_t pad[2];
	uint8_t bytes[16]; /* host bits zero */
};

struct dv_rangetab_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t seq; /* accessed atomically; odd while being written */
	uint32_t n;
	/* Bit L set: some entry of the family has prefix length L. */
	uint64_t lens4;
	uint64_t lens6[3];
	/* Bit B set: some entry of the family covers addresses whose first
	 * byte is B. Most addresses outside every range stop here. */
	uint64_t first4[4];
	uint64_t first6[4];
};

struct dv_rangetab {
	struct dv_rangetab_hdr hdr;
	struct dv_rangetab_entry e[DV_RANGETAB_MAX];
};

/* The path of the table for control socket path sock into buf. 0, or
 * -ENAMETOOLONG. */
int dv_rangetab_path(const char *sock, char *buf, size_t size);

/* Writer: replace the contents of t with prefixes p[0..n) (n at most
 * DV_RANGETAB_MAX, else -ENOSPC and t is unchanged). */
int dv_rangetab_write(struct dv_rangetab *t, const struct dv_prefix *p, size_t n);

/* Reader: 1 when a lies in one of t's prefixes, 0 when not, -EAGAIN when
 * t is being written (or was left half-written) and did not settle within
 * a few retries, -EBADMSG when t is not a table of this version. */
int dv_rangetab_lookup(const struct dv_rangetab *t, const struct dv_addr *a);
