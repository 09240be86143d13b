/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cluster wire format (wire.c): engine events, and whole engine states
 * for a joining node, as byte strings multicast through Corosync CPG; and
 * its byte-level helpers, shared with the engine's state snapshot
 * (engine.c). Not an interface beyond dvipad.
 *
 * Every node of a cluster decodes what any other node (possibly of another
 * dvipa version, possibly malicious or corrupted) sends, so decoding checks
 * every length and value and never trusts a count. Versioned, libc only.
 *
 * Everything is little-endian and written byte by byte: the layout never
 * depends on the compiler's struct padding or the host's byte order.
 *
 * Writers and readers are sticky: the first error is kept (w->err,
 * r->bad) and every later call does nothing, so that a sequence of calls is
 * checked once at its end. A reader returns zeros after an error; callers
 * check r->bad before they use a count to allocate anything.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "conf.h"
#include "engine.h"

#define DV_WIRE_VERSION 1
#define DV_WIRE_MAX (1u << 20) /* largest event; snapshots may be larger */

/* Address families on the wire (not the host's AF_* numbers). */
#define DV_WIRE_INET 4
#define DV_WIRE_INET6 6

/* Smallest encodings, for checking counts against the bytes left. */
#define DV_WIRE_ADDR_MIN 5    /* family + IPv4 */
#define DV_WIRE_RANGE_MIN 12  /* addr, len, policy, flags, line */
#define DV_WIRE_DEFINE_MIN 14 /* addr, plen, rank, moveable, trackport, line */

struct dv_wbuf {
	uint8_t *data;
	size_t len, cap;
	size_t max; /* -EMSGSIZE beyond this many bytes */
	int err;    /* first error: -ENOMEM, -EMSGSIZE or -EINVAL */
};

struct dv_rbuf {
	const uint8_t *data;
	size_t len, off;
	bool bad;
};

void dv_w_bytes(struct dv_wbuf *w, const void *p, size_t n);
void dv_w_u8(struct dv_wbuf *w, uint8_t v);
void dv_w_u16(struct dv_wbuf *w, uint16_t v);
void dv_w_u32(struct dv_wbuf *w, uint32_t v);
void dv_w_u64(struct dv_wbuf *w, uint64_t v);
/* Overwrite bytes already written (lengths and checksums). */
void dv_w_patch_u32(struct dv_wbuf *w, size_t off, uint32_t v);
void dv_w_patch_u64(struct dv_wbuf *w, size_t off, uint64_t v);
/* -EINVAL unless AF_INET or AF_INET6. */
void dv_w_addr(struct dv_wbuf *w, const struct dv_addr *a);
/* u16 size including the NUL, the bytes, the NUL; -EINVAL unless the
 * string ends within max bytes (max includes the NUL). */
void dv_w_str(struct dv_wbuf *w, const char *s, size_t max);
/* -EINVAL for what dv_r_range()/dv_r_define() would refuse. */
void dv_w_range(struct dv_wbuf *w, const struct dv_conf_range *r);
void dv_w_define(struct dv_wbuf *w, const struct dv_conf_define *d);

uint8_t dv_r_u8(struct dv_rbuf *r);
uint16_t dv_r_u16(struct dv_rbuf *r);
uint32_t dv_r_u32(struct dv_rbuf *r);
uint64_t dv_r_u64(struct dv_rbuf *r);
/* A boolean byte: 0 or 1, anything else is malformed. */
bool dv_r_bool(struct dv_rbuf *r);
/* A count of elements of at least min_size bytes each: malformed above max
 * or when the bytes left cannot hold that many. */
size_t dv_r_count(struct dv_rbuf *r, size_t max, size_t min_size);
void dv_r_addr(struct dv_rbuf *r, struct dv_addr *ret);
/* Into buf[size]; malformed unless 1 <= length <= size, NUL-terminated
 * and without an earlier NUL. */
void dv_r_str(struct dv_rbuf *r, char *buf, size_t size);
/* A range without allow lists: prefix (host bits clear), policy, flags. */
void dv_r_range(struct dv_rbuf *r, struct dv_conf_range *ret);
void dv_r_define(struct dv_rbuf *r, struct dv_conf_define *ret);
/* Malformed unless every byte has been read. */
void dv_r_end(struct dv_rbuf *r);

/* CRC-32 (IEEE 802.3, as zlib's crc32()). */
uint32_t dv_crc32(const void *p, size_t n);

/* ---------------- events ---------------- */

/* Encode ev. 0 and a malloc'ed *ret of *ret_len bytes, or -errno. */
int dv_event_encode(const struct dv_event *ev, uint8_t **ret, size_t *ret_len);

/*
 * Decode one event. The pointers inside *ret (node_config ranges and
 * defines, membership nodes) point into *ret_storage, which the caller frees
 * with free() once the event has been applied. -EBADMSG for anything
 * malformed (wrong version, short, trailing bytes, counts beyond the
 * engine's limits, unknown type, bad address family or prefix length).
 */
int dv_event_decode(const uint8_t *buf, size_t len, struct dv_event *ret, void **ret_storage);
