/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Announcements (gratuitous ARP, unsolicited NA) and duplicate-address
 * probes (RFC 5227 ARP probe, RFC 4862 DAD solicitation) on one AF_PACKET
 * socket. Frames are built by hand; the kernel's neighbour code has no
 * interface for "announce this address now" or "is this address taken".
 *
 * Frames leave through a socket of protocol 0, which receives nothing.
 * A second socket listens only while probes run, bound to ETH_P_ARP,
 * ETH_P_IPV6 or ETH_P_ALL as they need, and is closed when the last one
 * ends: a permanent ETH_P_ALL tap would make the kernel clone every frame
 * the host sends on the interface. (It cannot be parked instead: bind()
 * with protocol 0 keeps the current protocol.)
 *
 * A third socket, while there are IPv6 ROUTED ranges, answers neighbour
 * solicitations for their active addresses (dv_announce_answer_ns()): its
 * filter lets through nothing but solicitations. MLD reports for their
 * solicited-node groups (dv_announce_mld_report()) leave through the first.
 */
#include "kernel.h"

#include <errno.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <arpa/inet.h>
#include <net/ethernet.h>
#include <netinet/icmp6.h>
#include <netinet/if_ether.h>
#include <net/if.h>
#include <netinet/ip6.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addrset.h"
#include "cleanup.h"
#include "hashtab.h"
#include "metrics.h"
#include "prio.h"

#define SERIES_MAX 65536
#define PROBES_MAX 65536
#define SNAP_LEN 256 /* bytes of a received frame we look at */
#define RX_BURST 64  /* frames per wake-up, so the loop is not starved */
#define TIMER_ACCURACY_USEC 1000

struct an_entry;

struct probe {
	LIST_ENTRY(probe) link; /* in the entry's list, newest first */
	struct an_entry *e;
	sd_event_source *timer;
	uint64_t id;
	unsigned left; /* probes still to send */
	unsigned interval_ms;
	bool listening; /* counted in n_listen_v4/v6 */
	bool joined;	/* holds the solicited-node multicast membership */
	dv_probe_done_fn done;
	void *ud;
};

/* Everything going on for one address. Lives while it has a series or a probe. */
struct an_entry {
	struct dv_addr a; /* first: the key of dv_addr_item_hash() */
	struct dv_announce *an;
	bool series;	   /* in a series queue */
	uint8_t series_qi; /* which (struct dv_announce) */
	unsigned series_left, series_interval_ms;
	uint64_t series_due; /* CLOCK_MONOTONIC, us: its next frame */
	TAILQ_ENTRY(an_entry) series_link;
	LIST_HEAD(, probe) probes;
};

TAILQ_HEAD(series_head, an_entry);

struct dv_announce {
	sd_event *ev;
	int fd;	   /* sends */
	int rx_fd; /* receives while probes listen; -1 otherwise */
	int ifindex;
	uint8_t mac[6];
	sd_event_source *io;
	uint16_t rx_proto; /* network order */
	int ns_fd;	   /* neighbour solicitations to answer; -1: none */
	sd_event_source *ns_io;
	dv_ns_owner_fn owns;
	void *owns_ud;

	struct dv_hashtab entries; /* of struct an_entry, by address */
	/* The series, by their next frame's time, on one timer: a timer per
	 * address made the event loop turn once per frame (65,536 addresses
	 * announced: 131,072 turns). Two queues, each sorted: [0] the series
	 * that have sent their first frame only, [1] the others. A frame
	 * that goes queues the series' next at its time + the interval,
	 * which is never earlier than those queued before it in [1], but
	 * earlier than the first frames of all the series started within an
	 * interval after it: in one queue its insertion walked past those,
	 * O(n^2) when 21,845 addresses were taken over in a second (issue 15).
	 * Each insertion is now at its queue's tail (a walk only after a
	 * reload changed the interval). */
	struct series_head series_q[2];
	sd_event_source *series_timer;
	size_t n_series, n_probes;
	size_t n_listen_v4, n_listen_v6;
	uint64_t next_probe_id;
};

static const uint8_t bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t zero_mac[6];

/* ---------------- frames ---------------- */

#define ARP_FRAME_LEN (ETH_HLEN + 28)
#define NA_FRAME_LEN (ETH_HLEN + 40 + 24 + 8)
#define NS_FRAME_LEN (ETH_HLEN + 40 + 24)

static uint8_t *put_eth(uint8_t *p, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	uint16_t t = htons(type);

	memcpy(p, dst, 6);
	memcpy(p + 6, src, 6);
	memcpy(p + 12, &t, 2);
	return p + ETH_HLEN;
}

/* sip 0: RFC 5227 probe; sip == tip: announcement. */
static size_t build_arp(uint8_t *buf, const uint8_t mac[6], const struct in_addr *sip, const struct in_addr *tip)
{
	struct ether_arp arp = {0};

	arp.arp_hrd = htons(ARPHRD_ETHER);
	arp.arp_pro = htons(ETHERTYPE_IP);
	arp.arp_hln = 6;
	arp.arp_pln = 4;
	arp.arp_op = htons(ARPOP_REQUEST);
	memcpy(arp.arp_sha, mac, 6);
	memcpy(arp.arp_spa, sip, 4);
	memcpy(arp.arp_tha, zero_mac, 6); /* ignored; RFC 5227 says zero */
	memcpy(arp.arp_tpa, tip, 4);
	memcpy(put_eth(buf, bcast_mac, mac, ETHERTYPE_ARP), &arp, sizeof(arp));
	return ARP_FRAME_LEN;
}

static uint32_t sum16(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

/* ICMPv6 checksum: over the pseudo-header (RFC 8200 8.1) and the message. */
static uint16_t icmp6_csum(const struct in6_addr *src, const struct in6_addr *dst, const void *msg, size_t len)
{
	uint32_t sum = 0;

	sum = sum16(sum, src, 16);
	sum = sum16(sum, dst, 16);
	sum += (uint32_t)len;
	sum += IPPROTO_ICMPV6;
	sum = sum16(sum, msg, len);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static uint8_t *put_ip6(uint8_t *p, const struct in6_addr *src, const struct in6_addr *dst, size_t plen)
{
	struct ip6_hdr ip6 = {0};

	ip6.ip6_flow = htonl(6u << 28);
	ip6.ip6_plen = htons((uint16_t)plen);
	ip6.ip6_nxt = IPPROTO_ICMPV6;
	ip6.ip6_hlim = 255; /* receivers drop ND with any other value (RFC 4861 7.1) */
	ip6.ip6_src = *src;
	ip6.ip6_dst = *dst;
	memcpy(p, &ip6, sizeof(ip6));
	return p + sizeof(ip6);
}

static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
static const struct in6_addr all_nodes = {{{0xff, 0x02, [15] = 1}}};

/* NA for target (never a router's), to dst at dst_mac; flags are
 * ND_NA_FLAG_*. */
static size_t build_na(uint8_t *buf, const uint8_t mac[6], const struct in6_addr *target, const struct in6_addr *dst,
		       const uint8_t dst_mac[6], uint32_t flags)
{
	struct {
		struct nd_neighbor_advert na;
		struct nd_opt_hdr opt;
		uint8_t lladdr[6];
	} __attribute__((packed)) m = {0};
	uint8_t *p;

	m.na.nd_na_type = ND_NEIGHBOR_ADVERT;
	m.na.nd_na_flags_reserved = flags;
	m.na.nd_na_target = *target;
	m.opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
	m.opt.nd_opt_len = 1; /* units of 8 bytes */
	memcpy(m.lladdr, mac, 6);
	m.na.nd_na_cksum = icmp6_csum(target, dst, &m, sizeof(m));

	p = put_eth(buf, dst_mac, mac, ETHERTYPE_IPV6);
	p = put_ip6(p, target, dst, sizeof(m));
	memcpy(p, &m, sizeof(m));
	return NA_FRAME_LEN;
}

/* The solicited-node multicast group of the address whose low 24 bits are
 * low (RFC 4291 2.7.1): ff02::1:ff00:0/104 with those bits. */
static struct in6_addr solicited_node(const uint8_t low[3])
{
	struct in6_addr g = {{{0xff, 0x02, [11] = 1, [12] = 0xff}}};

	memcpy(&g.s6_addr[13], low, 3);
	return g;
}

/* DAD solicitation: from ::, to the target's solicited-node group, with no
 * source link-layer option (RFC 4862 5.4.2). */
static size_t build_dad_ns(uint8_t *buf, const uint8_t mac[6], const struct in6_addr *target)
{
	const struct in6_addr any = IN6ADDR_ANY_INIT;
	struct in6_addr snm = solicited_node(&target->s6_addr[13]);
	uint8_t dst_mac[6] = {0x33, 0x33, 0xff};
	struct nd_neighbor_solicit ns = {0};
	uint8_t *p;

	memcpy(&dst_mac[3], &target->s6_addr[13], 3);
	ns.nd_ns_type = ND_NEIGHBOR_SOLICIT;
	ns.nd_ns_target = *target;
	ns.nd_ns_cksum = icmp6_csum(&any, &snm, &ns, sizeof(ns));

	p = put_eth(buf, dst_mac, mac, ETHERTYPE_IPV6);
	p = put_ip6(p, &any, &snm, sizeof(ns));
	memcpy(p, &ns, sizeof(ns));
	return NS_FRAME_LEN;
}

static int send_frame(struct dv_announce *an, const uint8_t *frame, size_t len)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = an->ifindex,
		.sll_halen = 6,
	};
	uint16_t type;

	/* sll_protocol becomes skb->protocol, whatever the socket is bound to. */
	memcpy(&type, frame + 12, 2);
	sll.sll_protocol = type;
	memcpy(sll.sll_addr, frame, 6);
	if (sendto(an->fd, frame, len, 0, (const struct sockaddr *)&sll, sizeof(sll)) < 0)
		return -errno;
	return 0;
}

static int send_announce(struct dv_announce *an, const struct dv_addr *a)
{
	uint8_t frame[NA_FRAME_LEN];
	size_t len;
	int r;

	if (a->family == AF_INET)
		len = build_arp(frame, an->mac, &a->v4, &a->v4);
	else
		/* Unsolicited: override, to all nodes. */
		len = build_na(frame, an->mac, &a->v6, &all_nodes, all_nodes_mac, ND_NA_FLAG_OVERRIDE);
	r = send_frame(an, frame, len);
	dv_metrics.announcements += r == 0;
	return r;
}

static int send_probe(struct dv_announce *an, const struct dv_addr *a)
{
	const struct in_addr zero = {0};
	uint8_t frame[NS_FRAME_LEN];
	size_t len;

	if (a->family == AF_INET)
		len = build_arp(frame, an->mac, &zero, &a->v4);
	else
		len = build_dad_ns(frame, an->mac, &a->v6);
	return send_frame(an, frame, len);
}

/* A full transmit queue loses one frame, not the whole series or probe. */
static bool transient(int r)
{
	return r == -EAGAIN || r == -ENOBUFS;
}

/* ---------------- entries ---------------- */

#define entry_hash dv_addr_item_hash
#define entry_match dv_addr_item_match
_Static_assert(offsetof(struct an_entry, a) == 0, "an entry begins with its key");

static struct an_entry *entry_find(const struct dv_announce *an, const struct dv_addr *a)
{
	return dv_hashtab_get(&an->entries, dv_addr_hash(a), entry_match, a);
}

static int entry_get(struct dv_announce *an, const struct dv_addr *a, struct an_entry **ret)
{
	struct an_entry *e = entry_find(an, a);

	if (e) {
		*ret = e;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->an = an;
	e->a = *a;
	LIST_INIT(&e->probes);
	if (dv_hashtab_put(&an->entries, e, entry_hash) < 0) {
		free(e);
		return -ENOMEM;
	}
	*ret = e;
	return 0;
}

static void entry_put(struct an_entry *e)
{
	struct dv_announce *an = e->an;

	if (e->series || !LIST_EMPTY(&e->probes))
		return;
	dv_hashtab_del(&an->entries, dv_hashtab_find(&an->entries, entry_hash(e), entry_match, &e->a), entry_hash);
	free(e);
}

/* ---------------- announcements ---------------- */

static void series_end(struct an_entry *e)
{
	if (!e->series)
		return;
	TAILQ_REMOVE(&e->an->series_q[e->series_qi], e, series_link);
	e->series = false;
	e->an->n_series--;
}

/* Into queue qi by series_due: from the tail, where all go while the
 * interval stays the same. */
static void series_insert(struct dv_announce *an, struct an_entry *e, uint8_t qi)
{
	struct series_head *q = &an->series_q[qi];
	struct an_entry *after = TAILQ_LAST(q, series_head);

	while (after && after->series_due > e->series_due)
		after = TAILQ_PREV(after, series_head, series_link);
	if (after)
		TAILQ_INSERT_AFTER(q, after, e, series_link);
	else
		TAILQ_INSERT_HEAD(q, e, series_link);
	e->series = true;
	e->series_qi = qi;
}

/* The series whose frame is due first, if any. */
static struct an_entry *series_first(struct dv_announce *an)
{
	struct an_entry *a = TAILQ_FIRST(&an->series_q[0]), *b = TAILQ_FIRST(&an->series_q[1]);

	if (!a || (b && b->series_due < a->series_due))
		return b;
	return a;
}

/* The timer for the first due, or off. */
static int series_arm(struct dv_announce *an)
{
	struct an_entry *head = series_first(an);
	int r;

	if (!head)
		return sd_event_source_set_enabled(an->series_timer, SD_EVENT_OFF);
	r = sd_event_source_set_time(an->series_timer, head->series_due);
	if (r >= 0)
		r = sd_event_source_set_enabled(an->series_timer, SD_EVENT_ONESHOT);
	return r;
}

static int on_series(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct dv_announce *an = userdata;
	struct an_entry *e;

	(void)s;
	/* Every frame due within the timer's accuracy goes now. */
	while ((e = series_first(an)) && e->series_due <= usec + TIMER_ACCURACY_USEC) {
		/* Errors here have no one to go to; the next frame may pass. */
		(void)send_announce(an, &e->a);
		series_end(e);
		if (--e->series_left > 0) {
			e->series_due += (uint64_t)e->series_interval_ms * 1000;
			series_insert(an, e, 1);
			an->n_series++;
		} else {
			entry_put(e);
		}
	}
	(void)series_arm(an);
	return 0;
}

int dv_announce_start(struct dv_announce *an, const struct dv_addr *a, unsigned count, unsigned interval_ms)
{
	struct an_entry *e;
	uint64_t now;
	int r, sent;

	if (!an || !a || (a->family != AF_INET && a->family != AF_INET6))
		return -EINVAL;
	if (count == 0) {
		dv_announce_stop(an, a);
		return 0;
	}
	e = entry_find(an, a);
	if (!(e && e->series) && an->n_series >= SERIES_MAX)
		return -ENOSPC;
	r = sd_event_now(an->ev, CLOCK_MONOTONIC, &now);
	if (r < 0)
		return r;
	r = entry_get(an, a, &e);
	if (r < 0)
		return r;

	sent = send_announce(an, a);
	/* A restart: the series counts again from now. */
	series_end(e);
	if (count == 1) {
		entry_put(e);
		return sent;
	}
	e->series_left = count - 1;
	e->series_interval_ms = interval_ms;
	e->series_due = now + (uint64_t)interval_ms * 1000;
	series_insert(an, e, 0);
	an->n_series++;
	r = series_arm(an);
	if (r < 0) {
		series_end(e);
		entry_put(e);
		return r;
	}
	/* The series goes on even if the first frame failed: the caller
	 * hears of the failure, the later frames may still get through. */
	return sent;
}

void dv_announce_stop(struct dv_announce *an, const struct dv_addr *a)
{
	struct an_entry *e;

	if (!an || !a)
		return;
	e = entry_find(an, a);
	if (!e)
		return;
	series_end(e);
	entry_put(e);
}

/* ---------------- receiving ---------------- */

static uint16_t wanted_proto(const struct dv_announce *an)
{
	if (an->n_listen_v4 && an->n_listen_v6)
		return htons(ETH_P_ALL);
	if (an->n_listen_v4)
		return htons(ETH_P_ARP);
	if (an->n_listen_v6)
		return htons(ETH_P_IPV6);
	return 0;
}

static int bind_proto(int fd, int ifindex, uint16_t proto)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = proto,
		.sll_ifindex = ifindex,
	};

	if (bind(fd, (const struct sockaddr *)&sll, sizeof(sll)) < 0)
		return -errno;
	return 0;
}

/* ARP, and ICMPv6 neighbour solicitations and advertisements without
 * extension headers (ND never has them), received not sent. */
static const struct sock_filter probe_filter[] = {
	/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE)),
	/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 9, 0),
	/* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
	/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 6, 0),
	/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 6),
	/* 5 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, ETH_HLEN + offsetof(struct ip6_hdr, ip6_nxt)),
	/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 0, 4),
	/* 7 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, ETH_HLEN + sizeof(struct ip6_hdr)),
	/* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ND_NEIGHBOR_SOLICIT, 1, 0),
	/* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ND_NEIGHBOR_ADVERT, 0, 1),
	/* 10 */ BPF_STMT(BPF_RET | BPF_K, SNAP_LEN),
	/* 11 */ BPF_STMT(BPF_RET | BPF_K, 0),
};

/* ICMPv6 neighbour solicitations without extension headers, received not
 * sent (on a socket bound to ETH_P_IPV6). */
static const struct sock_filter ns_filter[] = {
	/* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE)),
	/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, 5, 0),
	/* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, ETH_HLEN + offsetof(struct ip6_hdr, ip6_nxt)),
	/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 0, 3),
	/* 4 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, ETH_HLEN + sizeof(struct ip6_hdr)),
	/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ND_NEIGHBOR_SOLICIT, 0, 1),
	/* 6 */ BPF_STMT(BPF_RET | BPF_K, SNAP_LEN),
	/* 7 */ BPF_STMT(BPF_RET | BPF_K, 0),
};

/* A packet socket on the interface that receives what filter (n
 * instructions) lets through of protocol proto, cb its handler; fd and io
 * set, or -errno and nothing left open. */
static int rx_socket(struct dv_announce *an, const struct sock_filter *filter, size_t n, uint16_t proto,
		     sd_event_io_handler_t cb, const char *name, int *fd, sd_event_source **io)
{
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = (struct sock_filter *)filter};
	int r = 0;

	/* Protocol 0 until the filter is in: no unfiltered frame is queued. */
	*fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (*fd < 0)
		return -errno;
	if (setsockopt(*fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0)
		r = -errno;
	if (r >= 0)
		r = bind_proto(*fd, an->ifindex, proto);
	if (r >= 0)
		r = sd_event_add_io(an->ev, io, *fd, EPOLLIN, cb, an);
	if (r >= 0)
		r = sd_event_source_set_priority(*io, DV_PRIO_KERNEL);
	if (r < 0) {
		*io = sd_event_source_disable_unref(*io);
		close(*fd);
		*fd = -1;
		return r;
	}
	(void)sd_event_source_set_description(*io, name);
	return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static void rx_close(struct dv_announce *an)
{
	an->io = sd_event_source_disable_unref(an->io);
	if (an->rx_fd >= 0)
		close(an->rx_fd);
	an->rx_fd = -1;
	an->rx_proto = 0;
}

static int rx_open(struct dv_announce *an, uint16_t proto)
{
	int r = rx_socket(an, probe_filter, sizeof(probe_filter) / sizeof(probe_filter[0]), proto, on_io, "dvipa-probe",
			  &an->rx_fd, &an->io);

	if (r == 0)
		an->rx_proto = proto;
	return r;
}

/* Open, re-bind or close the receiving socket as the probes need. */
static int update_binding(struct dv_announce *an)
{
	uint16_t p = wanted_proto(an);
	int r;

	if (p == an->rx_proto)
		return 0;
	if (p == 0) {
		rx_close(an);
		return 0;
	}
	if (an->rx_fd < 0)
		return rx_open(an, p);
	r = bind_proto(an->rx_fd, an->ifindex, p);
	if (r < 0)
		return r;
	an->rx_proto = p;
	return 0;
}

static int set_membership(struct dv_announce *an, const struct dv_addr *a, bool add)
{
	struct packet_mreq mr = {
		.mr_ifindex = an->ifindex,
		.mr_type = PACKET_MR_MULTICAST,
		.mr_alen = 6,
		.mr_address = {0x33, 0x33, 0xff, a->v6.s6_addr[13], a->v6.s6_addr[14], a->v6.s6_addr[15]},
	};

	if (an->rx_fd < 0)
		return -EBADF;
	if (setsockopt(an->rx_fd, SOL_PACKET, add ? PACKET_ADD_MEMBERSHIP : PACKET_DROP_MEMBERSHIP, &mr, sizeof(mr)) <
	    0)
		return -errno;
	return 0;
}

/* Unlink p and release what it holds; the entry may go too. */
static void probe_free(struct probe *p)
{
	struct an_entry *e = p->e;
	struct dv_announce *an = e->an;
	LIST_REMOVE(p, link);
	sd_event_source_disable_unref(p->timer);
	if (p->joined)
		(void)set_membership(an, &e->a, false);
	if (p->listening) {
		if (e->a.family == AF_INET)
			an->n_listen_v4--;
		else
			an->n_listen_v6--;
		/* Failing to stop listening costs CPU, not correctness. */
		(void)update_binding(an);
	}
	an->n_probes--;
	free(p);
	entry_put(e);
}

/* Report and forget p. done() may start or cancel probes, or stop
 * announcements: nothing of p or its entry is touched after it. */
static void probe_finish(struct probe *p, int result, const uint8_t mac[6])
{
	dv_probe_done_fn done = p->done;
	void *ud = p->ud;
	struct dv_addr a = p->e->a;

	probe_free(p);
	done(ud, &a, result, mac ? mac : zero_mac);
}

static void conflict(struct dv_announce *an, const struct dv_addr *a, const uint8_t mac[6])
{
	/* Probes started by the done() callbacks below are not part of it. */
	uint64_t barrier = an->next_probe_id;
	uint8_t m[6];

	if (memcmp(mac, an->mac, 6) == 0)
		return; /* our own frame, looped back by a bridge or a switch */
	memcpy(m, mac, 6);
	for (;;) {
		struct an_entry *e = entry_find(an, a);
		struct probe *p;

		/* Look again each time: done() may change anything. */
		for (p = e ? LIST_FIRST(&e->probes) : NULL; p && (p->id >= barrier || !p->listening);
		     p = LIST_NEXT(p, link))
			;
		if (!p)
			return;
		probe_finish(p, -EADDRINUSE, m);
	}
}

static void on_arp(struct dv_announce *an, const uint8_t *f, size_t len)
{
	struct ether_arp arp;
	struct dv_addr a = {.family = AF_INET};

	if (len < ARP_FRAME_LEN)
		return;
	memcpy(&arp, f + ETH_HLEN, sizeof(arp));
	if (arp.arp_hrd != htons(ARPHRD_ETHER) || arp.arp_pro != htons(ETHERTYPE_IP) || arp.arp_hln != 6 ||
	    arp.arp_pln != 4)
		return;
	if (arp.arp_op != htons(ARPOP_REQUEST) && arp.arp_op != htons(ARPOP_REPLY))
		return;
	/* RFC 5227 2.1.1: any ARP with our candidate as sender IP is a
	 * conflict; so is another host's probe for it (sender IP 0), as
	 * both of us would otherwise take the address. */
	memcpy(&a.v4, arp.arp_spa, 4);
	if (a.v4.s_addr == 0) {
		if (arp.arp_op != htons(ARPOP_REQUEST))
			return;
		memcpy(&a.v4, arp.arp_tpa, 4);
	}
	conflict(an, &a, arp.arp_sha);
}

static void on_ip6(struct dv_announce *an, const uint8_t *f, size_t len)
{
	struct ip6_hdr ip6;
	struct dv_addr a = {.family = AF_INET6};
	const uint8_t *mac = f + 6; /* Ethernet source */
	const uint8_t *icmp = f + ETH_HLEN + sizeof(ip6);
	size_t icmp_len;

	if (len < ETH_HLEN + sizeof(ip6) + sizeof(struct nd_neighbor_solicit))
		return;
	memcpy(&ip6, f + ETH_HLEN, sizeof(ip6));
	/* Hop limit 255: proof the sender is on this link (RFC 4861 7.1). */
	if ((ip6.ip6_vfc >> 4) != 6 || ip6.ip6_nxt != IPPROTO_ICMPV6 || ip6.ip6_hlim != 255)
		return;
	icmp_len = ntohs(ip6.ip6_plen);
	if (icmp_len < sizeof(struct nd_neighbor_solicit) || icmp[1] != 0)
		return;
	/* The snap length may have cut the options: look at what is here. */
	if (icmp_len > len - ETH_HLEN - sizeof(ip6))
		icmp_len = len - ETH_HLEN - sizeof(ip6);
	memcpy(&a.v6, icmp + 8, 16);

	if (icmp[0] == ND_NEIGHBOR_ADVERT) {
		/* The target's link-layer address says whose it is. */
		for (size_t off = 24; off + 8 <= icmp_len;) {
			size_t olen = (size_t)icmp[off + 1] * 8;

			if (olen == 0 || off + olen > icmp_len)
				break;
			if (icmp[off] == ND_OPT_TARGET_LINKADDR && olen >= 8) {
				mac = icmp + off + 2;
				break;
			}
			off += olen;
		}
	} else if (icmp[0] == ND_NEIGHBOR_SOLICIT) {
		/* Another host's DAD for the same address (RFC 4862 5.4.3). */
		if (!IN6_IS_ADDR_UNSPECIFIED(&ip6.ip6_src))
			return;
	} else {
		return;
	}
	conflict(an, &a, mac);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dv_announce *an = userdata;

	(void)revents;
	for (unsigned i = 0; i < RX_BURST; i++) {
		uint8_t f[SNAP_LEN];
		struct sockaddr_ll sll;
		socklen_t sl = sizeof(sll);
		ssize_t n = recvfrom(fd, f, sizeof(f), 0, (struct sockaddr *)&sll, &sl);
		uint16_t type;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (sll.sll_pkttype == PACKET_OUTGOING || (size_t)n < ETH_HLEN)
			continue;
		/* Leftovers of a finished probe: nothing to compare with. */
		if (!an->n_probes)
			continue;
		memcpy(&type, f + 12, 2);
		if (type == htons(ETH_P_ARP))
			on_arp(an, f, (size_t)n);
		else if (type == htons(ETH_P_IPV6))
			on_ip6(an, f, (size_t)n);
		/* A done() callback ended the last probe: this socket is closed. */
		if (an->io != s)
			break;
	}
	/* A negative return would disable the source for good. */
	return 0;
}

/* ---------------- probes ---------------- */

static int on_probe_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct probe *p = userdata;
	int r;

	(void)usec;
	if (p->left == 0) {
		/* interval_ms after the last probe and nobody answered. */
		probe_finish(p, 0, NULL);
		return 0;
	}
	r = send_probe(p->e->an, &p->e->a);
	if (r < 0 && !transient(r)) {
		probe_finish(p, r, NULL);
		return 0;
	}
	p->left--;
	(void)sd_event_source_set_time_relative(s, (uint64_t)p->interval_ms * 1000);
	(void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

int dv_probe_start(struct dv_announce *an, const struct dv_addr *a, unsigned count, unsigned interval_ms,
		   dv_probe_done_fn done, void *ud)
{
	struct an_entry *e;
	struct probe *p;
	uint64_t first_usec = 0;
	int r;

	if (!an || !a || !done || (a->family != AF_INET && a->family != AF_INET6))
		return -EINVAL;
	if (an->n_probes >= PROBES_MAX)
		return -ENOSPC;
	r = entry_get(an, a, &e);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p) {
		entry_put(e);
		return -ENOMEM;
	}
	*p = (struct probe){.e = e, .id = an->next_probe_id++, .interval_ms = interval_ms, .done = done, .ud = ud};
	LIST_INSERT_HEAD(&e->probes, p, link);
	an->n_probes++;

	/* count 0 gets its done(0) from the timer too, never from here. */
	if (count > 0) {
		if (a->family == AF_INET6)
			an->n_listen_v6++;
		else
			an->n_listen_v4++;
		p->listening = true;
		/* Listen before the first probe leaves, or a fast answer is lost. */
		r = update_binding(an);
		if (r < 0)
			goto fail;
		/* Another host's DAD goes to the solicited-node group, which a
		 * NIC filters out unless someone joined it. Best effort. */
		if (a->family == AF_INET6)
			p->joined = set_membership(an, a, true) == 0;
		r = send_probe(an, a);
		if (r < 0 && !transient(r))
			goto fail;
		p->left = count - 1;
		first_usec = (uint64_t)interval_ms * 1000;
	}
	r = sd_event_add_time_relative(an->ev, &p->timer, CLOCK_MONOTONIC, first_usec, TIMER_ACCURACY_USEC,
				       on_probe_timer, p);
	if (r < 0)
		goto fail;
	return 0;
fail:
	probe_free(p);
	return r;
}

void dv_probe_cancel(struct dv_announce *an, void *ud)
{
	if (!an)
		return;
	for (size_t i = 0; i < an->entries.cap;) {
		struct an_entry *e = an->entries.slots[i];
		struct probe *p, *pn;
		bool stays;

		if (!e) {
			i++;
			continue;
		}
		stays = e->series;
		LIST_FOREACH(p, &e->probes, link)
			if (p->ud != ud)
				stays = true;
		for (p = LIST_FIRST(&e->probes); p; p = pn) {
			pn = LIST_NEXT(p, link);
			if (p->ud == ud)
				probe_free(p);
		}
		/* An entry that went took its slot with it: a later entry may
		 * have moved into slot i (never an earlier one past it). */
		if (stays)
			i++;
	}
}

/* ---------------- setup ---------------- */

int dv_announce_open(sd_event *ev, int ifindex, const uint8_t mac[6], struct dv_announce **ret)
{
	struct dv_announce *an;
	int r;

	if (!ev || ifindex <= 0 || !mac || !ret)
		return -EINVAL;
	an = calloc(1, sizeof(*an));
	if (!an)
		return -ENOMEM;
	an->ev = sd_event_ref(ev);
	an->ifindex = ifindex;
	an->fd = -1;
	an->rx_fd = -1;
	an->ns_fd = -1;
	memcpy(an->mac, mac, 6);
	TAILQ_INIT(&an->series_q[0]);
	TAILQ_INIT(&an->series_q[1]);
	r = sd_event_add_time(ev, &an->series_timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC, on_series, an);
	if (r >= 0)
		r = sd_event_source_set_priority(an->series_timer, DV_PRIO_KERNEL);
	if (r >= 0)
		r = sd_event_source_set_enabled(an->series_timer, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	/* Protocol 0: it sends, and never receives. */
	an->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (an->fd < 0) {
		r = -errno;
		goto fail;
	}
	r = bind_proto(an->fd, ifindex, 0);
	if (r < 0)
		goto fail;
	*ret = an;
	return 0;
fail:
	dv_announce_free(an);
	return r;
}

struct dv_announce *dv_announce_free(struct dv_announce *an)
{
	if (!an)
		return NULL;
	/* Pending probes end silently: their requesters are going away too. */
	{
		struct an_entry *e;

		DV_HASHTAB_FOREACH(e, &an->entries) {
			while (!LIST_EMPTY(&e->probes)) {
				struct probe *p = LIST_FIRST(&e->probes);

				LIST_REMOVE(p, link);
				sd_event_source_disable_unref(p->timer);
				free(p);
			}
			free(e);
		}
	}
	dv_hashtab_clear(&an->entries);
	an->series_timer = sd_event_source_disable_unref(an->series_timer);
	/* Memberships go with the socket. */
	rx_close(an);
	an->ns_io = sd_event_source_disable_unref(an->ns_io);
	if (an->ns_fd >= 0)
		close(an->ns_fd);
	if (an->fd >= 0)
		close(an->fd);
	sd_event_unref(an->ev);
	free(an);
	return NULL;
}

/* ---------------- answering neighbour solicitations ---------------- */

/* The NS in frame f (len bytes, a solicitation by the filter): answered if
 * it is valid (RFC 4861 7.1.1) and owns() says its target is ours. */
static void on_ns(struct dv_announce *an, const uint8_t *f, size_t len)
{
	const uint8_t *icmp = f + ETH_HLEN + sizeof(struct ip6_hdr);
	const uint8_t *dst_mac = f + 6, *sllao = NULL;
	struct dv_addr a = {.family = AF_INET6};
	uint8_t frame[NA_FRAME_LEN];
	struct ip6_hdr ip6;
	size_t icmp_len;

	if (len < ETH_HLEN + sizeof(ip6) + sizeof(struct nd_neighbor_solicit) || memcmp(f + 6, an->mac, 6) == 0)
		return;
	memcpy(&ip6, f + ETH_HLEN, sizeof(ip6));
	icmp_len = ntohs(ip6.ip6_plen);
	/* A solicitation cut by the snap length cannot be checked: left. */
	if ((ip6.ip6_vfc >> 4) != 6 || ip6.ip6_nxt != IPPROTO_ICMPV6 || ip6.ip6_hlim != 255 ||
	    icmp_len < sizeof(struct nd_neighbor_solicit) || icmp_len > len - ETH_HLEN - sizeof(ip6) ||
	    icmp[0] != ND_NEIGHBOR_SOLICIT || icmp[1] != 0 || icmp6_csum(&ip6.ip6_src, &ip6.ip6_dst, icmp, icmp_len))
		return;
	memcpy(&a.v6, icmp + 8, 16);
	if (IN6_IS_ADDR_MULTICAST(&a.v6))
		return;
	for (size_t off = sizeof(struct nd_neighbor_solicit); off + 2 <= icmp_len;) {
		size_t olen = (size_t)icmp[off + 1] * 8;

		if (olen == 0 || off + olen > icmp_len)
			return; /* malformed: RFC 4861 7.1.1 says drop it */
		if (icmp[off] == ND_OPT_SOURCE_LINKADDR && olen >= 8)
			sllao = icmp + off + 2;
		off += olen;
	}
	if (!an->owns(an->owns_ud, &a))
		return;
	if (IN6_IS_ADDR_UNSPECIFIED(&ip6.ip6_src)) {
		/* Another host's duplicate-address probe: the address is in
		 * use, said to all nodes (RFC 4861 7.2.4). Such a probe has no
		 * source link-layer option. */
		if (sllao)
			return;
		len = build_na(frame, an->mac, &a.v6, &all_nodes, all_nodes_mac, ND_NA_FLAG_OVERRIDE);
	} else {
		len = build_na(frame, an->mac, &a.v6, &ip6.ip6_src, sllao ? sllao : dst_mac,
			       ND_NA_FLAG_SOLICITED | ND_NA_FLAG_OVERRIDE);
	}
	/* A lost answer is asked again: the solicitor retransmits. */
	(void)send_frame(an, frame, len);
}

static int on_ns_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct dv_announce *an = userdata;

	(void)s;
	(void)revents;
	for (unsigned i = 0; i < RX_BURST; i++) {
		uint8_t f[SNAP_LEN];
		ssize_t n = recv(fd, f, sizeof(f), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		on_ns(an, f, (size_t)n);
	}
	return 0;
}

int dv_announce_answer_ns(struct dv_announce *an, dv_ns_owner_fn owns, void *ud)
{
	struct packet_mreq mr = {.mr_type = PACKET_MR_ALLMULTI};
	int r;

	if (!an || !owns)
		return -EINVAL;
	/* A solicitation goes to the target's solicited-node group, which a
	 * NIC filters out unless someone joined it. */
	mr.mr_ifindex = an->ifindex;
	if (an->ns_fd >= 0)
		return -EALREADY;
	r = rx_socket(an, ns_filter, sizeof(ns_filter) / sizeof(ns_filter[0]), htons(ETH_P_IPV6), on_ns_io, "dvipa-nd",
		      &an->ns_fd, &an->ns_io);
	if (r < 0)
		return r;
	if (setsockopt(an->ns_fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
		r = -errno;
		an->ns_io = sd_event_source_disable_unref(an->ns_io);
		close(an->ns_fd);
		an->ns_fd = -1;
		return r;
	}
	an->owns = owns;
	an->owns_ud = ud;
	return 0;
}

/* ---------------- MLD reports ---------------- */

#define MLD_REPORT 143		/* MLDv2 (RFC 3810 5.2) */
#define MLD_CHANGE_TO_EXCLUDE 4 /* with no source: listening to the group */
#define MLD_RECORD_LEN 20
#define MLD_HDR_LEN (ETH_HLEN + 40 + 8 + 8) /* Ethernet, IPv6, hop-by-hop, report */
/* Records per report: what a 1,500-byte MTU holds. */
#define MLD_RECORDS ((1500 - 40 - 8 - 8) / MLD_RECORD_LEN)

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The interface's link-local address, the source MLD wants (RFC 3810 5);
 * :: if it has none yet, as the RFC allows. */
static struct in6_addr link_local(const struct dv_announce *an)
{
	struct in6_addr ll = IN6ADDR_ANY_INIT;
	struct ifaddrs *ifa, *i;
	char name[IF_NAMESIZE];

	if (!if_indextoname((unsigned)an->ifindex, name) || getifaddrs(&ifa) < 0)
		return ll;
	for (i = ifa; i; i = i->ifa_next) {
		const struct sockaddr_in6 *s6 = (const void *)i->ifa_addr;

		if (s6 && s6->sin6_family == AF_INET6 && strcmp(i->ifa_name, name) == 0 &&
		    IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) {
			ll = s6->sin6_addr;
			break;
		}
	}
	freeifaddrs(ifa);
	return ll;
}

/* One report of the groups g[0..n) (their low 24 bits), n <= MLD_RECORDS. */
static int send_mld(struct dv_announce *an, const struct in6_addr *src, const uint32_t *g, size_t n)
{
	static const uint8_t dst_mac[6] = {0x33, 0x33, 0, 0, 0, 0x16};
	/* All MLDv2-capable routers: where reports go, and what snooping
	 * switches listen to. */
	static const struct in6_addr dst = {{{0xff, 0x02, [15] = 0x16}}};
	/* Next header ICMPv6, router alert (MLD), padding. */
	static const uint8_t hop_by_hop[8] = {IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0};
	uint8_t frame[MLD_HDR_LEN + MLD_RECORDS * MLD_RECORD_LEN] = {0};
	size_t mlen = 8 + n * MLD_RECORD_LEN;
	uint8_t *p = put_eth(frame, dst_mac, an->mac, ETHERTYPE_IPV6), *m;
	uint16_t sum;

	p = put_ip6(p, src, &dst, sizeof(hop_by_hop) + mlen);
	p[-40 + 6] = 0; /* next header: hop-by-hop options */
	p[-40 + 7] = 1; /* hop limit 1 (RFC 3810 5) */
	memcpy(p, hop_by_hop, sizeof(hop_by_hop));
	m = p + sizeof(hop_by_hop);
	m[0] = MLD_REPORT;
	m[6] = (uint8_t)(n >> 8);
	m[7] = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		uint8_t *r = m + 8 + i * MLD_RECORD_LEN;
		const uint8_t low[3] = {(uint8_t)(g[i] >> 16), (uint8_t)(g[i] >> 8), (uint8_t)g[i]};
		struct in6_addr group = solicited_node(low);

		r[0] = MLD_CHANGE_TO_EXCLUDE;
		memcpy(r + 4, &group, 16);
	}
	sum = icmp6_csum(src, &dst, m, mlen);
	memcpy(m + 2, &sum, 2);
	return send_frame(an, frame, MLD_HDR_LEN + n * MLD_RECORD_LEN);
}

int dv_announce_mld_report(struct dv_announce *an, const struct dv_addr *const *a, size_t n)
{
	_cleanup_free_ uint32_t *g = malloc((n ? n : 1) * sizeof(*g));
	struct in6_addr src;
	size_t k = 0, u = 0;
	int r = 0;

	if (!g)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (a[i]->family == AF_INET6)
			g[k++] = (uint32_t)a[i]->v6.s6_addr[13] << 16 | (uint32_t)a[i]->v6.s6_addr[14] << 8 |
				 a[i]->v6.s6_addr[15];
	if (k == 0)
		return 0;
	/* One record per group: addresses that differ only above their low
	 * 24 bits share it. */
	qsort(g, k, sizeof(*g), cmp_u32);
	for (size_t i = 0; i < k; i++)
		if (u == 0 || g[u - 1] != g[i])
			g[u++] = g[i];
	src = link_local(an);
	for (size_t i = 0; i < u && r == 0; i += MLD_RECORDS)
		r = send_mld(an, &src, g + i, u - i < MLD_RECORDS ? u - i : MLD_RECORDS);
	return r;
}
