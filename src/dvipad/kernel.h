/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel side of dvipad: addresses through rtnetlink (kernel_addr.c),
 * announcements/probes through AF_PACKET (kernel_announce.c), socket holds
 * and bind watch through sock_diag (kernel_sockdiag.c), and the netlink
 * socket helper the netlink ones share (kernel_nl.c). All run on the
 * daemon's sd-event loop and never block it beyond one netlink round trip.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "addr.h"
#include "addrset.h"

/* Tag of dvipa's addresses (IFA_PROTO, Linux >= 5.18): how a restarted dvipad
 * finds the addresses a previous instance left behind. */
#define DV_IFA_PROTO 0xda

/* ---------------- kernel_nl.c ---------------- */

struct mnl_socket;
struct nlmsghdr;

/* One netlink socket (libmnl), with its receive buffer. */
struct dv_nl {
	struct mnl_socket *sock; /* NULL: closed */
	uint32_t portid, seq;
	char *rx;
	size_t rx_size;
	bool done;	  /* the last dv_nl_wait() read every answer it waited for */
	char ackmsg[256]; /* extended-ack text of the first failure of the current exchange */
};

typedef int (*dv_nl_data_fn)(const struct nlmsghdr *nlh, void *data);

/*
 * Open a netlink socket of bus (NETLINK_ROUTE, NETLINK_SOCK_DIAG):
 * non-blocking, close-on-exec, bound to an automatic port id, with
 * NETLINK_CAP_ACK and NETLINK_EXT_ACK, a receive buffer of rx_size bytes and,
 * if rcvbuf > 0, a socket buffer that large. The sequence number goes on
 * from where a closed nl left it. 0 or -errno (nl closed).
 */
int dv_nl_open(struct dv_nl *nl, int bus, size_t rx_size, int rcvbuf);
/* Close (an already closed nl too). */
void dv_nl_close(struct dv_nl *nl);
int dv_nl_fd(const struct dv_nl *nl);
/* Subscribe to the n multicast groups. */
int dv_nl_join(struct dv_nl *nl, const int *groups, size_t n);
/* Start a request in buf: type, NLM_F_REQUEST | flags, the next sequence
 * number. */
struct nlmsghdr *dv_nl_msg(struct dv_nl *nl, void *buf, uint16_t type, uint16_t flags);
/* Send len bytes of requests; starts an exchange (ackmsg cleared). */
int dv_nl_send(struct dv_nl *nl, const void *buf, size_t len);
/* One datagram, from the kernel only, into nl->rx: its length, or -EAGAIN,
 * -EINTR, -ENOBUFS (notifications or answers were lost), -ENOSPC (cut). */
ssize_t dv_nl_recv(struct dv_nl *nl);
/*
 * Wait for the answers to the n requests sent with sequence numbers first
 * .. first+n-1 (from our port id): an NLMSG_ERROR each (ack or error) or an
 * NLMSG_DONE for a dump, with up to a second between datagrams. Data
 * messages go to cb. errs, if given, gets each request's result. Returns
 * the first error (-ETIMEDOUT, -ENOBUFS, -EBADMSG included); -EINTR if a
 * dump was inconsistent. nl->done tells whether every answer was read.
 */
int dv_nl_wait(struct dv_nl *nl, uint32_t first, unsigned n, dv_nl_data_fn cb, void *data, int *errs);
/* Send the one request req and wait for its answer. */
int dv_nl_request(struct dv_nl *nl, const struct nlmsghdr *req, dv_nl_data_fn cb, void *data);

/* ---------------- kernel_addr.c ---------------- */

struct dv_kaddr;

struct dv_kaddr_ops {
	/* An installed address disappeared without dvipad asking (someone ran
	 * `ip addr del`); the module has already re-added it (result of that
	 * attempt in err). For logging. */
	void (*readded)(void *ud, const struct dv_addr *a, int err);
	/* Optional. The lifetime given to addresses changed to lease_s: the
	 * last refresh of n addresses took cpu_us of CPU in wall_us (see
	 * lease_s below). For logging. */
	void (*lease_changed)(void *ud, unsigned lease_s, size_t n, uint64_t cpu_us, uint64_t wall_us);
};

/*
 * Open rtnetlink sockets for interface ifname: one for requests (every
 * change with NLM_F_ACK, NETLINK_EXT_ACK, checked seq and port id), one
 * subscribed to the IPv4/IPv6 address groups. lease_s is the finite
 * lifetime (valid and preferred) given to installed addresses; the module
 * refreshes them every third of it from an sd-event timer. When a refresh
 * of every address takes more than 1% of a core, or more than a third of
 * the lifetime, the lifetime grows to 300 times its CPU time or 3 times its
 * duration (at most 86400 s), and back as the cost falls.
 */
int dv_kaddr_open(sd_event *ev, const char *ifname, unsigned lease_s, const struct dv_kaddr_ops *ops, void *ud,
		  struct dv_kaddr **ret);
struct dv_kaddr *dv_kaddr_free(struct dv_kaddr *k); /* removes nothing */

int dv_kaddr_ifindex(const struct dv_kaddr *k);
/* The interface's hardware address, 6 bytes. */
const uint8_t *dv_kaddr_mac(const struct dv_kaddr *k);

/*
 * Install a as a host address (/32, /128) on the interface, tagged
 * DV_IFA_PROTO, IPv6 with IFA_F_NODAD, with the lease lifetime; remember it
 * as desired. Synchronous: returns 0 once the kernel acknowledged, or
 * -errno; the kernel's extended-ack message, if any, is in
 * dv_kaddr_last_error(). An address of a ROUTED range (below) is queued
 * instead: 1, and its dv_kroute_ops.done() follows.
 */
int dv_kaddr_add(struct dv_kaddr *k, const struct dv_addr *a);
/* Remove a (and forget it). Removing an absent address is success. An
 * address of a ROUTED range: 1 if queued, as for dv_kaddr_add(). */
int dv_kaddr_del(struct dv_kaddr *k, const struct dv_addr *a);
/* Remove every desired address (clean shutdown). */
void dv_kaddr_del_all(struct dv_kaddr *k);
const char *dv_kaddr_last_error(const struct dv_kaddr *k);
bool dv_kaddr_installed(const struct dv_kaddr *k, const struct dv_addr *a);

/*
 * Dump the interface's addresses. Tagged ones (left by an earlier dvipad)
 * are removed, unless keep(ud, a) says the engine wants them (then they are
 * adopted as desired). Every other address is returned in *ret_local
 * (malloc'ed, caller frees) for dv_conf_check_local(). Returns the number
 * of tagged addresses removed, or -errno.
 */
int dv_kaddr_reconcile(struct dv_kaddr *k, bool (*keep)(void *ud, const struct dv_addr *a), void *ud,
		       struct dv_addr **ret_local, size_t *ret_n_local);

/*
 * Addresses of ROUTED ranges go to r instead (kernel_routed.c): add, del,
 * installed and del_all take them there; the cap of 65,536 addresses
 * counts both. r NULL: none. r must outlive k's use of it.
 */
struct dv_kroute;
void dv_kaddr_set_routed(struct dv_kaddr *k, struct dv_kroute *r);

/* ---------------- kernel_routed.c ---------------- */

struct dv_kroute_told;

/*
 * ROUTED ranges (IPv4 and IPv6): a local route per range in table local
 * (protocol DV_IFA_PROTO, on 'lo') and the nftables tables of
 * routed_rules.h. An
 * address is active while it is in the tables' "active" sets; the ranges
 * answer only while their "alive" element, refreshed every third of
 * lease_s, has not expired.
 *
 * Additions and removals are queued and sent as one nf_tables transaction
 * per iteration of the event loop (at most 2,048 changes each); done()
 * says how each ended. An address with a change queued is not yet what
 * the change makes it (usable, or gone): dv_kroute_pending() tells, and
 * whoever would say so waits for done(). Every queued change gets its
 * done(): a change of an address whose other change is queued sends the
 * queue first.
 */
struct dv_kroute_ops {
	/* A refresh failed (told once until one succeeds). Optional. */
	void (*failed)(void *ud, const char *msg);
	/* The queued addition (add) or removal of a went through (err 0) or
	 * not (-errno, the reason in dv_kroute_last_error()): a failed
	 * addition is no longer active; a failed removal is forgotten all
	 * the same (see dv_kroute_del()). May queue new changes. Optional. */
	void (*done)(void *ud, const struct dv_addr *a, bool add, int err);
	/* After the done()s of one transaction: what went through, the lowest
	 * and highest address of each kind (unset when none). Optional. */
	void (*told)(void *ud, const struct dv_kroute_told *t);
};

/* One transaction, after its done()s (dv_kroute_ops.told). */
struct dv_kroute_told {
	size_t n; /* changes in the transaction, failed ones included */
	size_t added, removed;
	struct dv_addr add_lo, add_hi, del_lo, del_hi;
};

/* No I/O. p[0..n) are copied; n may be 0 (then start only removes what an
 * earlier dvipad left). ops (and ud) must outlive r. */
int dv_kroute_new(sd_event *ev, const struct dv_prefix *p, size_t n, unsigned lease_s, const struct dv_kroute_ops *ops,
		  void *ud, struct dv_kroute **ret);
/* Remove the routes of ranges no longer ROUTED, replace the tables (empty
 * active sets: an earlier dvipad's elements are dropped), add the routes,
 * start the refresh. 0 or -errno, the reason in dv_kroute_last_error(). */
int dv_kroute_start(struct dv_kroute *r);
struct dv_kroute *dv_kroute_free(struct dv_kroute *r); /* removes nothing, tells nothing */
bool dv_kroute_covers(const struct dv_kroute *r, const struct dv_addr *a);
/* While done() is told: how many changes its transaction had (0 outside). */
size_t dv_kroute_telling(const struct dv_kroute *r);
/* Active, or its removal still queued (the kernel has it until then). */
bool dv_kroute_installed(const struct dv_kroute *r, const struct dv_addr *a);
/* Active, and its element in the kernel: a is to be answered for (IPv6
 * neighbour solicitations, which the kernel leaves to dvipad). */
bool dv_kroute_answers(const struct dv_kroute *r, const struct dv_addr *a);
/* Iterate over the active addresses: for (size_t i = 0; dv_kroute_next(r, &i, &a);) */
bool dv_kroute_next(const struct dv_kroute *r, size_t *i, const struct dv_addr **ret);
/* A change of a is queued (the kernel does not have it yet). */
bool dv_kroute_pending(const struct dv_kroute *r, const struct dv_addr *a);
size_t dv_kroute_count(const struct dv_kroute *r);
/* Queue a's addition or removal: 1 (done() follows), or 0 if there is
 * nothing to do (adding an active one, removing an inactive one), or
 * -EINVAL (outside every ROUTED range), -ENOMEM. A removal
 * that failed is forgotten all the same: the next refresh rewrites the
 * active sets before it makes the ranges alive again, and refreshes
 * nothing while it cannot, so the kernel never answers for an address
 * dvipad let go for longer than the lease. */
int dv_kroute_add(struct dv_kroute *r, const struct dv_addr *a);
int dv_kroute_del(struct dv_kroute *r, const struct dv_addr *a);
/* Send the queue now (done() calls included). */
void dv_kroute_flush(struct dv_kroute *r);
/* Send the queue, then empty the active sets (the gate closed, shutdown). */
void dv_kroute_del_all(struct dv_kroute *r);
/* Clean shutdown: the queue dropped, routes and tables removed. */
int dv_kroute_remove(struct dv_kroute *r);
const char *dv_kroute_last_error(const struct dv_kroute *r);

/* ---------------- kernel_announce.c ---------------- */

struct dv_announce;

int dv_announce_open(sd_event *ev, int ifindex, const uint8_t mac[6], struct dv_announce **ret);
struct dv_announce *dv_announce_free(struct dv_announce *an);

/*
 * Announce a: IPv4, a gratuitous ARP as RFC 5227 defines the announcement
 * (ARP request, sender IP = target IP = a, sender MAC = ours, broadcast);
 * IPv6, an unsolicited neighbour advertisement (override flag, target a,
 * source a, to ff02::1, target link-layer address option). The first at
 * once, count in total, interval_ms apart. A new call for the same address
 * restarts its series.
 */
int dv_announce_start(struct dv_announce *an, const struct dv_addr *a, unsigned count, unsigned interval_ms);
void dv_announce_stop(struct dv_announce *an, const struct dv_addr *a);

/*
 * Check that no other host uses a before we take it: IPv4, count ARP probes
 * (sender IP 0.0.0.0, target a) interval_ms apart; IPv6, count DAD neighbour
 * solicitations (source ::, to the solicited-node group). Any ARP packet
 * with sender IP a, or NA for target a, from another MAC within the window
 * (until interval_ms after the last probe) is a conflict. done() is called
 * exactly once (not from within this call) with 0 or -EADDRINUSE and the
 * other host's MAC. count 0: done(0) on the next loop iteration.
 * Returns 0 or -errno (then done is never called).
 */
typedef void (*dv_probe_done_fn)(void *ud, const struct dv_addr *a, int result, const uint8_t mac[6]);
int dv_probe_start(struct dv_announce *an, const struct dv_addr *a, unsigned count, unsigned interval_ms,
		   dv_probe_done_fn done, void *ud);
/* Forget every probe whose callback data is ud (the requester went away). */
void dv_probe_cancel(struct dv_announce *an, void *ud);

/*
 * Answer IPv6 neighbour solicitations for the addresses owns() says are
 * this node's (those of IPv6 ROUTED ranges, which the kernel does not
 * answer for: they are not on the interface), from now until an is freed:
 * a solicited advertisement to the solicitor, or one to all nodes if it
 * was another host's duplicate-address probe (RFC 4861 7.2.4, RFC 4862
 * 5.4.3: the address is defended). The interface receives all multicast
 * meanwhile (the solicited-node groups are not joined in the kernel, see
 * dv_announce_mld_report()). owns()
 * is called from the event loop, ud must outlive an.
 */
typedef bool (*dv_ns_owner_fn)(void *ud, const struct dv_addr *a);
int dv_announce_answer_ns(struct dv_announce *an, dv_ns_owner_fn owns, void *ud);
/*
 * Send MLDv2 reports (RFC 3810) saying that this node listens to the
 * solicited-node groups of the IPv6 addresses among a[0..n) (the others
 * are skipped), so that a switch that prunes multicast by MLD snooping
 * sends it their solicitations; the interface's allmulti does the rest.
 * The kernel's own joins are not used: each walks the interface's list of
 * groups. Nothing answers queries: the caller repeats the reports more
 * often than a snooping switch forgets them (RFC 3810's Multicast Listener
 * Interval, 260 s by default). 0 or -errno of the first report not sent.
 */
int dv_announce_mld_report(struct dv_announce *an, const struct dv_addr *const *a, size_t n);

/* ---------------- kernel_connidx.c ---------------- */

/*
 * The connection index: a BPF sock_ops program that counts this network
 * namespace's TCP connections (and connects under way) per local address
 * as they open and close, so that a move need not walk the whole
 * established table to learn that an address has none. Handshakes a
 * listener has under way are not counted, nor sockets of before the open.
 */
struct dv_connidx;

/* Load and attach (CAP_BPF and CAP_NET_ADMIN, a cgroup v2 hierarchy).
 * 0, or -errno and why (what failed, for the log). */
int dv_connidx_open(struct dv_connidx **ret, char *why, size_t why_size);
struct dv_connidx *dv_connidx_free(struct dv_connidx *x);
/* The connections counted on a (an IPv4 one through AF_INET6 sockets
 * too) into *ret: 0, or -errno when the index cannot tell (-ENOSPC: a map
 * was full, a connection went uncounted; from then on, always). */
int dv_connidx_count(struct dv_connidx *x, const struct dv_addr *a, uint64_t *ret);

/* ---------------- kernel_sockdiag.c ---------------- */

/*
 * Which local addresses have sockets bound to them, from sock_diag
 * (NETLINK_SOCK_DIAG): the source of socket holds (a VIPA activated by a
 * bind() through the preload shim lives while any socket in the network
 * namespace is bound to it or connected from it, whichever process owns
 * it) and of bind watch (VIPARANGE ... BINDWATCH: a listening or bound
 * socket on a range address activates it).
 */

struct dv_sockdiag;

struct dv_sockdiag_ops {
	/* A watched address gained its first (bound=true) or lost its last
	 * (bound=false) socket; or (bind watch) a socket bound to an address
	 * inside a watched prefix appeared (bound=true). */
	void (*changed)(void *ud, const struct dv_addr *a, bool bound);
	/* Optional. A re-check or poll in the event loop failed with err
	 * (-errno); it is retried, and told again only after one succeeded. */
	void (*failed)(void *ud, int err);
	/* Optional. The connection index (dv_sockdiag_use_index) lost count
	 * of a connection (a map was full) and was dropped: looks walk. */
	void (*index_lost)(void *ud);
};

/* Default period of the bind poll: the kernel sends no notification for a
 * new bind, so a filtered dump of listening TCP and bound UDP sockets runs
 * this often, and only while prefixes are set or a watched address is
 * unbound (no timer otherwise). Detection delay of a bind <= one period. */
#define DV_SOCKDIAG_POLL_MS 20

/* Fails if the kernel cannot dump TCP and UDP sockets (tcp_diag, udp_diag).
 * changed() may call any function here, dv_sockdiag_free() included. */
int dv_sockdiag_open(sd_event *ev, const struct dv_sockdiag_ops *ops, void *ud, struct dv_sockdiag **ret);
struct dv_sockdiag *dv_sockdiag_free(struct dv_sockdiag *s);

/* Track a (at most 65536 addresses, -ENOSPC beyond; a v4-mapped IPv6
 * address is its IPv4 address); the current state is reported through
 * changed() from the event loop (not from within this call) when it is
 * known, then every transition. Watching a watched address changes
 * nothing. Losing the last socket is seen from destroy notifications;
 * gaining one (unbound -> bound) from the bind poll, which sees listening
 * TCP and UDP sockets only. A TCP socket that is bound but neither
 * listening nor connected is invisible to sock_diag. */
int dv_sockdiag_watch(struct dv_sockdiag *s, const struct dv_addr *a);
/* Stop tracking a. It also forgets a's bind-watch appearance: a socket
 * still or again bound to it inside a watched prefix is reported anew by the
 * next poll (a server that rebinds right after its address went away). */
void dv_sockdiag_unwatch(struct dv_sockdiag *s, const struct dv_addr *a);
/* Synchronous one-off check: 1 if some socket is bound to a, 0 if not, -errno. */
int dv_sockdiag_bound(struct dv_sockdiag *s, const struct dv_addr *a);
/* Synchronous: the inodes of the sockets bound to a (the first max of them)
 * into ret[0..*ret_n), for finding their processes. 0 or -errno. */
int dv_sockdiag_bound_inodes(struct dv_sockdiag *s, const struct dv_addr *a, uint32_t *ret, size_t max, size_t *ret_n);

/* A socket holding an address: one per address from dv_sockdiag_bound_in(). */
struct dv_bound_socket {
	struct dv_addr addr; /* a v4-mapped IPv6 address is its IPv4 address */
	uint32_t inode;
	uid_t uid;
};
/* Synchronous: the addresses inside p[0..n) that a socket holds (as for
 * socket holds: TCP in any state but TIME_WAIT and SYN_RECV, UDP bound or
 * connected), one socket of each, the first max of them into
 * ret[0..*ret_n). One dump per family and protocol. 0 or -errno. */
int dv_sockdiag_bound_in(struct dv_sockdiag *s, const struct dv_prefix *p, size_t n, struct dv_bound_socket *ret,
			 size_t max, size_t *ret_n);

/* A bitmap of the 65,536 ports, bit set: a listener's port. */
#define DV_PORT_BITMAP (65536 / 8)
static inline bool dv_port_in(const uint8_t *bitmap, uint16_t port)
{
	return bitmap[port / 8] & (1u << (port % 8));
}

/* Synchronous, one dump: every port a TCP socket listens on (any address,
 * any family) in the namespace, into ret. 0 or -errno. For TRACKPORT. */
int dv_sockdiag_listening_ports(struct dv_sockdiag *s, uint8_t ret[static DV_PORT_BITMAP]);
/* The TCP listeners bound to a or to the wildcard on each port of q[0..n)
 * (a distributed VIPA's readiness and SERVERWLM's headroom), one dump: how
 * many, their accept queues and backlogs summed. 0 or -errno. */
struct dv_listen_queue {
	uint16_t port;
	unsigned listeners;
	uint64_t queued, backlog;
};
int dv_sockdiag_listen_queues(struct dv_sockdiag *s, const struct dv_addr *a, struct dv_listen_queue *q, size_t n);

/* Synchronous, one dump: the addresses of `of` that a TCP connection
 * (in its handshake, established or closing, either side) has as its local
 * address are added to ret; if ret_open is given, those a new connection
 * could open on too (a TCP listener bound to it or to the wildcard, or a
 * connect from it under way) to ret_open. 0 or -errno. For WHENIDLE and
 * moves. The dump walks the whole established table (milliseconds on a
 * large host). */
int dv_sockdiag_busy_set(struct dv_sockdiag *s, const struct dv_addrset *of, struct dv_addrset *ret,
			 struct dv_addrset *ret_open);
/* Synchronous, one dump of the listening table alone (cheap): the
 * addresses of `of` a TCP listener bound to them or to the wildcard could
 * take a connection on, into ret. 0 or -errno. */
int dv_sockdiag_open_set(struct dv_sockdiag *s, const struct dv_addrset *of, struct dv_addrset *ret);
/* Answer dv_sockdiag_busy_set() from idx (taken: freed with s, or here on
 * failure) where it can: walk only for the addresses it counts connections
 * on, or that have a TCP listener bound to them (its handshakes under way
 * are not counted), or that had connections when the index started (one
 * dump here finds them). 0, or -errno if that dump failed. */
int dv_sockdiag_use_index(struct dv_sockdiag *s, struct dv_connidx *idx);
/* Addresses dv_sockdiag_busy_set() answered for from the index alone, and
 * walked for, since the open. */
void dv_sockdiag_looks(const struct dv_sockdiag *s, uint64_t *ret_index, uint64_t *ret_walk);

/* The peer of a connection. */
struct dv_peer {
	struct dv_addr addr;
	uint16_t port;
};
/* Synchronous, one dump per family: the peers of the established TCP
 * connections whose local end is a:port, the first max of them into
 * ret[0..*ret_n). Port 0: every connection on a, any port and any state
 * but listening (a handshake under way and a closing one included: what a
 * move must keep). 0, -E2BIG when there were more, or -errno. */
/* Synchronous: end every TCP connection whose local end is a (but
 * listeners) with SOCK_DESTROY (the program gets ECONNABORTED, the peer a
 * RST). *ret_n: how many ended. 0, -E2BIG when there were more than one
 * call ends (call again), -EOPNOTSUPP without CONFIG_INET_DIAG_DESTROY,
 * -EPERM without CAP_NET_ADMIN, or -errno. */
int dv_sockdiag_destroy_on(struct dv_sockdiag *s, const struct dv_addr *a, size_t *ret_n);
int dv_sockdiag_peers(struct dv_sockdiag *s, const struct dv_addr *a, uint16_t port, struct dv_peer *ret, size_t max,
		      size_t *ret_n);
/* Bind watch: replace the set of watched prefixes (at most 4096, -ENOSPC
 * beyond; host bits set: -EINVAL). An address inside them reported
 * bound=true stays reported until no listening TCP or UDP socket is left
 * on it; a later socket reports it again. */
int dv_sockdiag_set_prefixes(struct dv_sockdiag *s, const struct dv_prefix *p, size_t n);

/* ---------------- kernel_proc.c ---------------- */

/*
 * Processes, from /proc (of dvipad's pid namespace): who owns the sockets
 * bound to an address, for UNIQUE ranges and for status and the log.
 */

/* Whether pid is alive (and not a zombie). */
bool dv_proc_alive(pid_t pid);
/* Whether pid is ancestor or one of its descendants. */
bool dv_proc_descends(pid_t pid, pid_t ancestor);
/* Whether pid has a file descriptor for one of the sockets inodes[0..n). */
bool dv_proc_owns_socket(pid_t pid, const uint32_t *inodes, size_t n);
/* A process, other than except, that has a file descriptor for one of the
 * sockets inodes[0..n), or 0. Reads every process's fd table: for refusals
 * and status, not for every request. */
pid_t dv_proc_socket_owner(const uint32_t *inodes, size_t n, pid_t except);
/* The owner of each socket inodes[i] (a process that has a file descriptor
 * for it, not dvipad) into ret[i], 0 if none: one pass over every
 * process's fd table. */
void dv_proc_socket_owners(const uint32_t *inodes, size_t n, pid_t *ret);
/* Whether the process of any socket can be found: reading /proc/PID/fd of
 * a program with more capabilities than dvipad takes CAP_SYS_PTRACE. */
bool dv_proc_sees_sockets(void);
/* Whether pid's effective uid, group or supplementary groups are allowed
 * to use range r (its ALLOW list), as for a request it would send. */
struct dv_conf_range;
bool dv_proc_allowed(pid_t pid, const struct dv_conf_range *r);
/* The command name of pid (/proc/PID/comm) into buf, "?" if unknown. */
const char *dv_proc_comm(pid_t pid, char *buf, size_t size);
