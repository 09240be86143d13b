/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cluster wire format: engine events, and whole engine states for a
 * joining node, as byte strings multicast through Corosync CPG.
 *
 * Every node of a cluster decodes what any other node (possibly of another
 * dvipa version, possibly malicious or corrupted) sends, so decoding checks
 * every length and value and never trusts a count. Little-endian on the
 * wire, versioned, libc only.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define DV_WIRE_VERSION 1
#define DV_WIRE_MAX (1u << 20) /* largest event; snapshots may be larger */

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
