/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The connection index: how many TCP connections each local address of
 * this network namespace has, kept by the kernel as they open and close,
 * so that a move asks a map instead of walking the whole established
 * table (a sock_diag dump walks all of its buckets, 262,144 on a 24 GiB
 * host, whatever its filter: milliseconds of every takeover, issue 15
 * item 5).
 *
 * A BPF_PROG_TYPE_SOCK_OPS program on the root of the cgroup v2 hierarchy
 * (so that it sees every socket's callbacks), attached through a BPF link:
 * it goes with the last descriptor, when dvipad exits however it exits.
 * The program ignores sockets of other network namespaces (each dvipad of
 * a host counts its own). Per socket:
 *   - a connect starting (TCP_CONNECT_CB), or a connection established
 *     (ACTIVE_ or PASSIVE_ESTABLISHED_CB) that is not counted yet: its
 *     cookie goes into `socks` with its local address, it asks for state
 *     callbacks, and the address's count in `counts` goes up;
 *   - its state becoming CLOSE (STATE_CB; also after TIME_WAIT's hand-off,
 *     which closes the full socket): if `socks` has it, out of it, and the
 *     count goes down.
 * Only this program's own sockets are counted down (those in `socks`), so
 * a previous dvipad's or another program's state callbacks count nothing.
 * A map that is full sets `lost`: the index cannot be believed any more,
 * and dvipad walks the table as before (dv_connidx_count fails).
 *
 * Counted: what sock_diag's look for a move counts (kernel_sockdiag.c)
 * but the handshakes a listener has under way (SYN_RECV: request sockets
 * have no callback that ends them); the caller walks for addresses that
 * have a listener of their own. Sockets of before the attach are not
 * counted: the caller looks at those once (kernel_sockdiag.c's unsure).
 *
 * The program is assembled here, a few dozen instructions: no compiler
 * for BPF, no libbpf, no object file to ship. Its pseudo-C is beside it.
 */
#include "kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

#define SOCKS_MAX (1u << 20)  /* counted sockets of this namespace */
#define COUNTS_MAX (1u << 18) /* local addresses with a counted socket, ever */
#define TCP_CLOSE_STATE 7     /* include/net/tcp_states.h */
#define PROG_MAX 192	      /* instructions (the program has about 140) */

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* The key of `counts`: AF_INET (addr[0] in network order) or AF_INET6, as
 * the socket has it: an IPv4 address through an AF_INET6 socket is
 * ::ffff:a.b.c.d. */
struct idx_key {
	uint32_t family;
	uint32_t addr[4];
};

struct dv_connidx {
	int socks, counts, lost, prog, link;
};

/* ---- a small assembler: the kernel's insn encoding (linux/bpf.h) ---- */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define OR32_IMM(d, i) INSN(BPF_ALU | BPF_OR | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define STX_W(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define STX_DW(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define ST_W(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define ST_DW(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_DW, d, 0, o, i)
#define XADD_DW(d, s, o) INSN(BPF_STX | BPF_ATOMIC | BPF_DW, d, s, o, BPF_ADD)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define JNE_REG(d, s, o) INSN(BPF_JMP | BPF_JNE | BPF_X, d, s, o, 0)
#define JA(o) INSN(BPF_JMP | BPF_JA, 0, 0, o, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* Two instructions: a 64-bit immediate, or (src BPF_PSEUDO_MAP_FD) a map. */
#define LD_IMM64_(d, s, v)                                                                                             \
	INSN(BPF_LD | BPF_DW | BPF_IMM, d, s, 0, (int32_t)(uint32_t)(v)),                                              \
		INSN(0, 0, 0, 0, (int32_t)(uint32_t)((uint64_t)(v) >> 32))
#define LD_IMM64(d, v) LD_IMM64_(d, 0, v)
#define LD_MAP(d, fd) LD_IMM64_(d, BPF_PSEUDO_MAP_FD, fd)

#define CTX(f) ((int16_t)offsetof(struct bpf_sock_ops, f))
enum { R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, FP };
/* The stack: the key at -24 (20 bytes), the cookie at -32, a u64 at -40,
 * the lost map's index at -44. */
enum { KEY = -24, COOKIE = -32, ONE = -40, ZERO = -44 };

/* Jump offsets are patched from the labels at the end; 0 if the program
 * outgrew its buffer (PROG_MAX) or a jump list (a bug: the load fails). */
static size_t prog_build(struct bpf_insn *p, const struct dv_connidx *x, uint64_t netns)
{
	size_t n = 0, j_add[3], j_out[12], n_out = 0, j_lost[8], n_lost = 0, j_state, j_v6, j_keyed, j_newc, j_counted;
	size_t l_add, l_counted, l_state, l_v6, l_keyed, l_newc, l_lost, l_out;
	bool bad = false;

#define EMIT(...)                                                                                                      \
	do {                                                                                                           \
		const struct bpf_insn e_[] = {__VA_ARGS__};                                                            \
		if (n + sizeof(e_) / sizeof(e_[0]) <= PROG_MAX)                                                        \
			memcpy(p + n, e_, sizeof(e_));                                                                 \
		else                                                                                                   \
			bad = true;                                                                                    \
		n += sizeof(e_) / sizeof(e_[0]);                                                                       \
	} while (0)
#define JUMP(list, count, insn)                                                                                        \
	do {                                                                                                           \
		if ((count) < sizeof(list) / sizeof(list[0]))                                                          \
			list[(count)++] = n;                                                                           \
		else                                                                                                   \
			bad = true;                                                                                    \
		EMIT(insn);                                                                                            \
	} while (0)
#define TO_OUT(insn) JUMP(j_out, n_out, insn)
#define TO_LOST(insn) JUMP(j_lost, n_lost, insn)
#define PATCH(at, label) (p[at].off = (int16_t)((label) - (at)-1))

	/* r6 = ctx; switch (ctx->op) */
	EMIT(MOV64_REG(R6, R1), LDX_W(R7, R6, CTX(op)));
	j_state = n;
	EMIT(JEQ_IMM(R7, BPF_SOCK_OPS_STATE_CB, 0));
	j_add[0] = n;
	EMIT(JEQ_IMM(R7, BPF_SOCK_OPS_TCP_CONNECT_CB, 0));
	j_add[1] = n;
	EMIT(JEQ_IMM(R7, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, 0));
	j_add[2] = n;
	EMIT(JEQ_IMM(R7, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, 0));
	TO_OUT(JA(0));

	/* add: if (netns_cookie(ctx) != NETNS) return 1; */
	l_add = n;
	EMIT(MOV64_REG(R1, R6), CALL(BPF_FUNC_get_netns_cookie), LD_IMM64(R1, netns));
	TO_OUT(JNE_REG(R0, R1, 0));
	/* key = { family, local address } */
	EMIT(LDX_W(R1, R6, CTX(family)), STX_W(FP, R1, KEY));
	j_v6 = n;
	EMIT(JEQ_IMM(R1, AF_INET6, 0));
	EMIT(LDX_W(R1, R6, CTX(local_ip4)), STX_W(FP, R1, KEY + 4), ST_W(FP, KEY + 8, 0), ST_W(FP, KEY + 12, 0),
	     ST_W(FP, KEY + 16, 0));
	j_keyed = n;
	EMIT(JA(0));
	l_v6 = n;
	EMIT(LDX_W(R1, R6, CTX(local_ip6[0])), STX_W(FP, R1, KEY + 4), LDX_W(R1, R6, CTX(local_ip6[1])),
	     STX_W(FP, R1, KEY + 8), LDX_W(R1, R6, CTX(local_ip6[2])), STX_W(FP, R1, KEY + 12),
	     LDX_W(R1, R6, CTX(local_ip6[3])), STX_W(FP, R1, KEY + 16));
	/* cookie = socket_cookie(ctx); if ((k = lookup(socks, &cookie))) counted; */
	l_keyed = n;
	EMIT(MOV64_REG(R1, R6), CALL(BPF_FUNC_get_socket_cookie), STX_DW(FP, R0, COOKIE));
	EMIT(LD_MAP(R1, x->socks), MOV64_REG(R2, FP), ADD64_IMM(R2, COOKIE), CALL(BPF_FUNC_map_lookup_elem));
	j_counted = n;
	EMIT(JNE_IMM(R0, 0, 0));
	/* if (update(socks, &cookie, &key, NOEXIST)) lost; */
	EMIT(LD_MAP(R1, x->socks), MOV64_REG(R2, FP), ADD64_IMM(R2, COOKIE), MOV64_REG(R3, FP), ADD64_IMM(R3, KEY),
	     MOV64_IMM(R4, BPF_NOEXIST), CALL(BPF_FUNC_map_update_elem));
	TO_LOST(JNE_IMM(R0, 0, 0));
	/* cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | STATE_CB_FLAG) */
	EMIT(LDX_W(R2, R6, CTX(bpf_sock_ops_cb_flags)), OR32_IMM(R2, BPF_SOCK_OPS_STATE_CB_FLAG), MOV64_REG(R1, R6),
	     CALL(BPF_FUNC_sock_ops_cb_flags_set));
	/* v = lookup(counts, &key); if (v) { *v += 1; return 1; } */
	EMIT(LD_MAP(R1, x->counts), MOV64_REG(R2, FP), ADD64_IMM(R2, KEY), CALL(BPF_FUNC_map_lookup_elem));
	j_newc = n;
	EMIT(JEQ_IMM(R0, 0, 0), MOV64_IMM(R1, 1), XADD_DW(R0, R1, 0));
	TO_OUT(JA(0));
	/* if (!update(counts, &key, &one, NOEXIST)) return 1; (else a
	 * callback on another CPU added it first:) the lookup again */
	l_newc = n;
	EMIT(ST_DW(FP, ONE, 1), LD_MAP(R1, x->counts), MOV64_REG(R2, FP), ADD64_IMM(R2, KEY), MOV64_REG(R3, FP),
	     ADD64_IMM(R3, ONE), MOV64_IMM(R4, BPF_NOEXIST), CALL(BPF_FUNC_map_update_elem));
	TO_OUT(JEQ_IMM(R0, 0, 0));
	EMIT(LD_MAP(R1, x->counts), MOV64_REG(R2, FP), ADD64_IMM(R2, KEY), CALL(BPF_FUNC_map_lookup_elem));
	TO_LOST(JEQ_IMM(R0, 0, 0));
	EMIT(MOV64_IMM(R1, 1), XADD_DW(R0, R1, 0));
	TO_OUT(JA(0));

	/* counted (at its connect, now established): if (*k != key) lost;
	 * return 1. Its source address changed in between (ip_dynaddr
	 * re-selects it when a SYN cannot be routed): counted under the
	 * wrong address, the index cannot be believed. */
	l_counted = n;
	for (int16_t i = 0; i < (int16_t)sizeof(struct idx_key); i += 4) {
		EMIT(LDX_W(R1, R0, i), LDX_W(R2, FP, KEY + i));
		TO_LOST(JNE_REG(R1, R2, 0));
	}
	TO_OUT(JA(0));

	/* state: if (ctx->args[1] != TCP_CLOSE) return 1; */
	l_state = n;
	EMIT(LDX_W(R1, R6, CTX(args[1])));
	TO_OUT(JNE_IMM(R1, TCP_CLOSE_STATE, 0));
	/* cookie = socket_cookie(ctx); k = lookup(socks, &cookie); if (!k) return 1; */
	EMIT(MOV64_REG(R1, R6), CALL(BPF_FUNC_get_socket_cookie), STX_DW(FP, R0, COOKIE));
	EMIT(LD_MAP(R1, x->socks), MOV64_REG(R2, FP), ADD64_IMM(R2, COOKIE), CALL(BPF_FUNC_map_lookup_elem));
	TO_OUT(JEQ_IMM(R0, 0, 0));
	/* key = *k; if (delete(socks, &cookie)) return 1; (counted down once:
	 * a socket can pass to CLOSE twice, a destroy after its close; a
	 * delete that failed leaves it to the next, the count high) */
	for (int16_t i = 0; i < (int16_t)sizeof(struct idx_key); i += 4)
		EMIT(LDX_W(R1, R0, i), STX_W(FP, R1, KEY + i));
	EMIT(LD_MAP(R1, x->socks), MOV64_REG(R2, FP), ADD64_IMM(R2, COOKIE), CALL(BPF_FUNC_map_delete_elem));
	TO_OUT(JNE_IMM(R0, 0, 0));
	/* v = lookup(counts, &key); if (!v) lost; *v -= 1; */
	EMIT(LD_MAP(R1, x->counts), MOV64_REG(R2, FP), ADD64_IMM(R2, KEY), CALL(BPF_FUNC_map_lookup_elem));
	TO_LOST(JEQ_IMM(R0, 0, 0));
	EMIT(MOV64_IMM(R1, -1), XADD_DW(R0, R1, 0));
	TO_OUT(JA(0));

	/* lost: v = lookup(lost, &zero); if (v) *v = 1; */
	l_lost = n;
	EMIT(ST_W(FP, ZERO, 0), LD_MAP(R1, x->lost), MOV64_REG(R2, FP), ADD64_IMM(R2, ZERO),
	     CALL(BPF_FUNC_map_lookup_elem));
	TO_OUT(JEQ_IMM(R0, 0, 0));
	EMIT(ST_DW(R0, 0, 1));
	/* out: return 1 (the reply field is left alone: 0, the kernel's default
	 * for the callbacks that read it) */
	l_out = n;
	EMIT(MOV64_IMM(R0, 1), EXIT());
	if (bad)
		return 0;

	PATCH(j_state, l_state);
	for (size_t i = 0; i < 3; i++)
		PATCH(j_add[i], l_add);
	PATCH(j_v6, l_v6);
	PATCH(j_keyed, l_keyed);
	PATCH(j_newc, l_newc);
	PATCH(j_counted, l_counted);
	for (size_t i = 0; i < n_out; i++)
		PATCH(j_out[i], l_out);
	for (size_t i = 0; i < n_lost; i++)
		PATCH(j_lost[i], l_lost);
	return n;
#undef EMIT
#undef JUMP
#undef TO_OUT
#undef TO_LOST
#undef PATCH
}

#define LOG_SIZE (1u << 20)

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	long r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));

	return r < 0 ? -errno : (int)r;
}

static int map_create(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags, const char *name)
{
	union bpf_attr a = {
		.map_type = type, .key_size = key, .value_size = value, .max_entries = max, .map_flags = flags};

	snprintf(a.map_name, sizeof(a.map_name), "%s", name);
	return sys_bpf(BPF_MAP_CREATE, &a);
}

static int map_lookup(int fd, const void *key, void *value)
{
	union bpf_attr a = {.map_fd = (uint32_t)fd, .key = (uintptr_t)key, .value = (uintptr_t)value};

	return sys_bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

static int prog_load(const struct bpf_insn *prog, size_t n, char *log, size_t log_size)
{
	union bpf_attr a = {.prog_type = BPF_PROG_TYPE_SOCK_OPS,
			    .insn_cnt = (uint32_t)n,
			    .insns = (uintptr_t)prog,
			    .license = (uintptr_t) "GPL",
			    .log_level = log ? 1 : 0,
			    .log_size = log ? (uint32_t)log_size : 0,
			    .log_buf = (uintptr_t)log};

	snprintf(a.prog_name, sizeof(a.prog_name), "dvipa_connidx");
	return sys_bpf(BPF_PROG_LOAD, &a);
}

/* The cgroup v2 hierarchy's mount point (/sys/fs/cgroup, or .../unified
 * beside the v1 hierarchies), if it mounts the hierarchy's root. */
static int cgroup2_root(char *ret, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char root[1024], mnt[1024], *sep = strstr(line, " - ");

		/* id parent major:minor root mount-point ... - fstype ... */
		if (sep && strncmp(sep, " - cgroup2 ", 11) == 0 &&
		    sscanf(line, "%*s %*s %*s %1023s %1023s", root, mnt) == 2 && strcmp(root, "/") == 0) {
			snprintf(ret, size, "%s", mnt);
			return 0;
		}
	}
	return -ENOENT;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

struct dv_connidx *dv_connidx_free(struct dv_connidx *x)
{
	if (!x)
		return NULL;
	close_fd(&x->link); /* detaches the program */
	close_fd(&x->prog);
	close_fd(&x->socks);
	close_fd(&x->counts);
	close_fd(&x->lost);
	free(x);
	return NULL;
}

int dv_connidx_open(struct dv_connidx **ret, char *why, size_t why_size)
{
	struct bpf_insn prog[PROG_MAX];
	char root[1024];
	union bpf_attr a;
	uint64_t netns = 0;
	socklen_t len = sizeof(netns);
	struct dv_connidx *x;
	struct stat st;
	size_t n;
	int fd, cg, r;

	*ret = NULL;
	snprintf(why, why_size, "out of memory");
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->socks = x->counts = x->lost = x->prog = x->link = -1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &netns, &len) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot read the network namespace's cookie: %s", strerror(-r));
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	close(fd);
	x->socks = map_create(BPF_MAP_TYPE_HASH, sizeof(uint64_t), sizeof(struct idx_key), SOCKS_MAX, BPF_F_NO_PREALLOC,
			      "dvipa_socks");
	x->counts = x->socks < 0 ? x->socks
				 : map_create(BPF_MAP_TYPE_HASH, sizeof(struct idx_key), sizeof(uint64_t), COUNTS_MAX,
					      BPF_F_NO_PREALLOC, "dvipa_counts");
	x->lost = x->counts < 0
			  ? x->counts
			  : map_create(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(uint64_t), 1, 0, "dvipa_lost");
	if (x->lost < 0) {
		r = x->lost;
		snprintf(why, why_size, "cannot create its BPF maps: %s", strerror(-r));
		goto fail;
	}
	n = prog_build(prog, x, netns);
	x->prog = n ? prog_load(prog, n, NULL, 0) : -E2BIG;
	if (x->prog < 0) {
		/* Again with the verifier's log: its last line says why. */
		_cleanup_free_ char *log = n ? calloc(1, LOG_SIZE) : NULL;
		char *last = log;
		int again;

		r = x->prog;
		if (log && (again = prog_load(prog, n, log, LOG_SIZE)) < 0) {
			for (char *nl; (nl = strchr(last, '\n')) && nl[1];)
				last = nl + 1;
			last[strcspn(last, "\n")] = '\0';
		} else if (log) {
			close(again); /* the first failure passed (short of memory) */
			*log = '\0';
		}
		snprintf(why, why_size, "the kernel refused its BPF program: %s%s%s", strerror(-r),
			 last && *last ? ": " : "", last ? last : "");
		goto fail;
	}
	r = cgroup2_root(root, sizeof(root));
	if (r < 0) {
		/* (`ip netns exec` mounts a sysfs of its own over /sys,
		 * without the cgroup mounts under it.) */
		snprintf(why, why_size, "no cgroup v2 hierarchy is mounted here");
		goto fail;
	}
	cg = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot open '%s': %s", root, strerror(-r));
		goto fail;
	}
	/* The hierarchy's root (inode 1), not the root of a cgroup
	 * namespace (a container's): a program there would not see the
	 * sockets of processes outside it, in the same network namespace. */
	if (fstat(cg, &st) < 0 || st.st_ino != 1) {
		r = -EPERM;
		snprintf(why, why_size, "'%s' is not the root of the cgroup hierarchy (a cgroup namespace)", root);
		close(cg);
		goto fail;
	}
	a = (union bpf_attr){.link_create = {.prog_fd = (uint32_t)x->prog,
					     .target_fd = (uint32_t)cg,
					     .attach_type = BPF_CGROUP_SOCK_OPS}};
	x->link = sys_bpf(BPF_LINK_CREATE, &a);
	close(cg);
	if (x->link < 0) {
		r = x->link;
		snprintf(why, why_size, "cannot attach its BPF program to '%s': %s", root, strerror(-r));
		goto fail;
	}
	*ret = x;
	return 0;
fail:
	dv_connidx_free(x);
	return r;
}

static int count_key(const struct dv_connidx *x, const struct idx_key *k, uint64_t *sum)
{
	uint64_t v = 0;
	int r = map_lookup(x->counts, k, &v);

	if (r < 0 && r != -ENOENT)
		return r;
	*sum += r < 0 ? 0 : v;
	return 0;
}

int dv_connidx_count(struct dv_connidx *x, const struct dv_addr *a, uint64_t *ret)
{
	struct idx_key k = {.family = a ? a->family : 0};
	uint32_t zero = 0;
	uint64_t lost = 0, sum = 0;
	int r;

	if (!x || !a || (a->family != AF_INET && a->family != AF_INET6))
		return -EINVAL;
	memcpy(k.addr, a->bytes, a->family == AF_INET6 ? 16 : 4);
	r = count_key(x, &k, &sum);
	if (r >= 0 && a->family == AF_INET) {
		/* Through AF_INET6 sockets: ::ffff:a.b.c.d */
		k = (struct idx_key){.family = AF_INET6, .addr = {0, 0, htonl(0xffff)}};
		memcpy(&k.addr[3], a->bytes, 4);
		r = count_key(x, &k, &sum);
	}
	/* After the counts: a connection that went uncounted before them
	 * shows here. */
	if (r >= 0)
		r = map_lookup(x->lost, &zero, &lost);
	if (r < 0)
		return r;
	if (lost)
		return -ENOSPC;
	*ret = sum;
	return 0;
}
