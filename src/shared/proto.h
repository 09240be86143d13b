/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control protocol between dvipad and its clients (libdvipa, the preload
 * shim, dvipactl), over a UNIX SOCK_SEQPACKET socket: one datagram is one
 * message, so a message is never split or merged, and a message larger than
 * DV_MSG_MAX is detected with MSG_TRUNC.
 *
 * Message: struct dv_msg_hdr, then attributes. Attribute: struct dv_attr,
 * then its value, padded to 4 bytes. All integers in host byte order (the
 * socket is local). Every length is checked before use; decoding never
 * trusts the peer. Authorization uses SO_PEERCRED, never message fields.
 *
 * Requests carry a client-chosen seq; the daemon's reply (one RESULT, or
 * RECORDs followed by one RESULT) echoes it. EVENTs are unsolicited, seq 0.
 * libc only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "result.h"

#define DV_PROTO_MAGIC 0x50495644u /* "DVIP" read as little-endian bytes */
#define DV_PROTO_VERSION 1
#define DV_MSG_MAX 65536
#define DV_REASON_MAX 256    /* bytes of a reason string, with NUL */
#define DV_PROTO_NODE_MAX 64 /* bytes of a node name, with NUL */
#define DV_DEFAULT_SOCKET "/run/dvipa/dvipad.sock"

struct dv_msg_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type; /* enum dv_msg_type */
	uint32_t len;  /* whole message, header included */
	uint32_t seq;
};

struct dv_attr {
	uint16_t type; /* enum dv_attr_type */
	uint16_t len;  /* header + value, without padding */
};

enum dv_msg_type {
	/* client -> daemon */
	DV_MSG_ACTIVATE = 1, /* ADDR, KIND (default api) */
	DV_MSG_RELEASE = 2,  /* ADDR, KIND (operator = deactivate) */
	DV_MSG_STANDBY = 3,  /* ADDR, RANK, KIND (api or socket) */
	DV_MSG_STATUS = 4,   /* optional ADDR: only that VIPA */
	DV_MSG_CONFIG = 5,
	DV_MSG_RELOAD = 6,
	DV_MSG_MOVE = 7,       /* ADDR, NODE: root only */
	DV_MSG_DEACTIVATE = 8, /* ADDR, optional NODE (default: this node): root only */
	DV_MSG_REACTIVATE = 9, /* ADDR, optional NODE: root only */
	DV_MSG_LEAVE = 10,     /* optional NODE: root only */
	DV_MSG_JOIN = 11,      /* optional NODE: root only */
	DV_MSG_TARGETS = 12,   /* optional ADDR: only that distributed VIPA */
	DV_MSG_CONNS = 13,     /* optional ADDR: the pins of that distributed VIPA */
	DV_MSG_QUIESCE = 14,   /* ADDR, optional NODE (this node only), optional PORT: root only */
	DV_MSG_RESUME = 15,    /* ADDR, optional NODE (this node only), optional PORT: root only */
	/* ADDR: the ports this node's programs send from when they use the
	 * address as their source (SYSPLEXPORTS): a RESULT with PORT_RANGE,
	 * or without one where any port will do. Anyone may ask. */
	DV_MSG_SOURCE_PORTS = 16,
	/* (17..19 are left for requests of the distributed VIPAs.) */
	DV_MSG_METRICS = 20, /* OpenMetrics text as TEXT records, one a line */
	/* Subscribe: the RESULT, then a CHANGE record (same seq) for every
	 * change of a VIPA's owner, quorum or membership, until the client
	 * closes; a reader that falls behind gets a final RESULT DV_R_LIMIT
	 * and is disconnected. */
	DV_MSG_MONITOR = 21,
	/* daemon -> client */
	DV_MSG_RESULT = 64, /* RESULT, REASON, optional ADDR, optional SOURCE */
	DV_MSG_EVENT = 65,  /* EVENT, ADDR, REASON */
	DV_MSG_RECORD = 66, /* RECTYPE, then FIELDs */
};

/* Kinds of hold (DV_A_KIND); dvipad's enum dv_kind has the same
 * numbers. */
/* Who keeps a VIPA active (DESIGN §3 "Holds"); also the engine's hold
 * kinds and the cluster wire's numbers. */
enum dv_kind {
	/* A client connection (libdvipa, dvipactl run): ends on RELEASE or
	 * CLIENT_GONE. Identity: (node, client). */
	DV_KIND_API = 1,
	/* dvipactl activate: ends only on RELEASE of kind OPERATOR
	 * (deactivate). Identity: (node); the client only gets the reply. */
	DV_KIND_OPERATOR = 2,
	/* Sockets bound to the address on the node (preload shim, bind
	 * watch): ends on RELEASE of kind SOCKET or an ADDR_STATE without
	 * DV_AS_BOUND. Identity: (node). */
	DV_KIND_SOCKET = 3,
};

/* "api", "operator", "socket" (status records); "api" for anything else. */
const char *dv_kind_name(uint32_t kind);

enum dv_attr_type {
	DV_A_ADDR = 1,	      /* u8 family (AF_INET/AF_INET6), then 4 or 16 bytes */
	DV_A_KIND = 2,	      /* u32 enum dv_kind */
	DV_A_RANK = 3,	      /* u32 1..254 */
	DV_A_RESULT = 4,      /* u32 enum dv_result */
	DV_A_REASON = 5,      /* NUL-terminated string, < DV_REASON_MAX */
	DV_A_EVENT = 6,	      /* u32: 1 granted, 2 lost */
	DV_A_RECTYPE = 7,     /* u32 enum dv_rec_type */
	DV_A_FIELD = 8,	      /* u8 field type, key (NUL-terminated), value; see below */
	DV_A_SOURCE = 9,      /* u32, in a RESULT granting an address: 1 when its range
			       * is SOURCEVIPA (send from it by default) */
	DV_A_NODE = 10,	      /* NUL-terminated node name, 1..DV_PROTO_NODE_MAX-1 bytes */
	DV_A_SOURCE_USE = 11, /* u32 1, in an ACTIVATE: the address is wanted as a source
			       * only: activate it if no node has it, never take it
			       * from another node */
	DV_A_PORT = 12,	      /* u32 1..65535: a port of a distributed VIPA */
	DV_A_PORT_RANGE = 13, /* u32 first << 16 | last (first <= last, first > 0), in the
			       * RESULT of a SOURCE_PORTS */
};

/* Record types of STATUS and CONFIG replies. HOLD, STANDBY and MOVING
 * records follow the VIPA record they belong to. */
enum dv_rec_type {
	DV_REC_DAEMON = 1,  /* node, nodeid, cluster, quorate, interface, ... */
	DV_REC_MEMBER = 2,  /* nodeid, name, self, left */
	DV_REC_VIPA = 3,    /* addr, state, owner, origin, since, reason, installed,
			     * deactivated_on (node names, comma-separated) */
	DV_REC_HOLD = 4,    /* addr, kind, node, client, uid, since */
	DV_REC_STANDBY = 5, /* addr, node, client, rank, uid, since */
	DV_REC_RANGE = 6,   /* range, policy, deleted, users, groups */
	DV_REC_DEFINE = 7,  /* addr, rank, moveable, trackport */
	DV_REC_TEXT = 8,    /* text: normalized configuration, one line */
	DV_REC_TARGET = 9,  /* addr, port, method, node, nodeid, state, ready, weight,
			     * slots, distributor (node name), quiesced */
	DV_REC_CONN = 10,   /* addr, port, client, client_port, target (node name),
			     * state (open, closing), expires_ms */
	DV_REC_MOVING = 11, /* addr, node, node_name, connections: a, moved away
			     * from node, still has connections there (MOVING) */
	/* time, event, then what the event has: addr, node, from, to,
	 * origin, reason, quorate, members (see dvipactl(8) "monitor") */
	DV_REC_CHANGE = 20,
};

/* DV_A_FIELD value: u8 type, key string with NUL, then the value: */
enum dv_field_type {
	DV_F_STR = 1,  /* NUL-terminated string */
	DV_F_U64 = 2,  /* 8 bytes (unaligned; copy out) */
	DV_F_BOOL = 3, /* 1 byte, 0 or 1 */
};

/* ---- building ---- */

struct dv_msgb {
	uint8_t buf[DV_MSG_MAX];
	size_t len;
	bool overflow; /* a put did not fit; finish fails */
};

void dv_msgb_init(struct dv_msgb *b, uint16_t type, uint32_t seq);
void dv_msgb_put_u32(struct dv_msgb *b, uint16_t type, uint32_t v);
void dv_msgb_put_str(struct dv_msgb *b, uint16_t type, const char *s); /* truncated to DV_REASON_MAX-1 for REASON */
void dv_msgb_put_addr(struct dv_msgb *b, const struct dv_addr *a);
void dv_msgb_field_str(struct dv_msgb *b, const char *key, const char *v);
void dv_msgb_field_u64(struct dv_msgb *b, const char *key, uint64_t v);
void dv_msgb_field_bool(struct dv_msgb *b, const char *key, bool v);
/* Fill in the length. 0 and the message in b->buf[0..b->len), or -EMSGSIZE. */
int dv_msgb_finish(struct dv_msgb *b);

/* ---- parsing ---- */

struct dv_msg {
	uint16_t type;
	uint32_t seq;
	const uint8_t *attrs;
	size_t attrs_len;
};

/*
 * Validate one received datagram of exactly len bytes: magic, version,
 * header length == len <= DV_MSG_MAX, and every attribute's length within
 * bounds. 0, -EBADMSG (malformed), or -EPROTONOSUPPORT (other version).
 */
int dv_msg_parse(const void *buf, size_t len, struct dv_msg *ret);

struct dv_attr_iter {
	const uint8_t *p, *end;
};
void dv_attr_iter_init(struct dv_attr_iter *it, const struct dv_msg *m);
/* 1 and the next attribute, 0 at the end. The message was validated by
 * dv_msg_parse, so the iteration itself cannot fail. */
int dv_attr_next(struct dv_attr_iter *it, uint16_t *ret_type, const void **ret_val, size_t *ret_len);

/* Typed value decoders: 0 or -EBADMSG when the value has the wrong size or
 * form (a string must end in its only NUL, an address family must match its
 * length). */
int dv_val_u32(const void *v, size_t n, uint32_t *ret);
int dv_val_str(const void *v, size_t n, const char **ret);
int dv_val_addr(const void *v, size_t n, struct dv_addr *ret);
int dv_val_field(const void *v, size_t n, uint8_t *ret_ftype, const char **ret_key, const char **ret_str,
		 uint64_t *ret_u64, bool *ret_bool);

/* A request as the daemon sees it, with the rules per type applied:
 * ACTIVATE/RELEASE need ADDR, STANDBY needs ADDR and RANK in 1..254, KIND in
 * 1..3; MOVE needs ADDR and NODE (a non-empty name), DEACTIVATE and
 * REACTIVATE need ADDR; unknown attribute types are ignored (forward compatibility);
 * duplicate attributes are an error. On error, *ret_why names the problem. */
struct dv_request {
	uint16_t type;
	uint32_t seq;
	bool has_addr;
	struct dv_addr addr;
	uint32_t kind;		      /* 0 when absent */
	uint32_t rank;		      /* 0 when absent */
	char node[DV_PROTO_NODE_MAX]; /* "" when absent */
	bool source_use;	      /* DV_A_SOURCE_USE (ACTIVATE only) */
	uint32_t port;		      /* DV_A_PORT, 0 when absent */
};
int dv_request_decode(const struct dv_msg *m, struct dv_request *ret, const char **ret_why);

/* A RESULT or EVENT as a client sees it. */
struct dv_reply {
	uint16_t type;
	uint32_t seq;
	uint32_t result;	   /* RESULT */
	uint32_t event;		   /* EVENT */
	uint32_t source;	   /* RESULT: the range is SOURCEVIPA */
	uint16_t port_lo, port_hi; /* RESULT of SOURCE_PORTS: 0 when any port will do */
	bool has_addr;
	struct dv_addr addr;
	char reason[DV_REASON_MAX];
};
int dv_reply_decode(const struct dv_msg *m, struct dv_reply *ret);
