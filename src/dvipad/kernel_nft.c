/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libnftables runs a buffer of commands as one netlink batch: all of it
 * commits or none does. Output and errors are buffered, never printed, so
 * that the caller logs them once.
 */
#include "kernel_nft.h"

#include <errno.h>
#include <fcntl.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "kernel.h"

#define BG_ERROR_MAX 4096

struct dv_knft {
	struct nft_ctx *nft;
	/* The background transaction. */
	pid_t pid; /* 0: none */
	sd_event_source *src;
	int fd; /* its result: "0", or "1" and nft's message */
	char out[BG_ERROR_MAX + 2];
	size_t n_out;
	dv_knft_done_fn done;
	void *ud;
};

int dv_knft_new(struct dv_knft **ret)
{
	struct dv_knft *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->fd = -1;
	k->nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!k->nft || nft_ctx_buffer_output(k->nft) < 0 || nft_ctx_buffer_error(k->nft) < 0) {
		dv_knft_free(k);
		return -ENOMEM;
	}
	*ret = k;
	return 0;
}

struct dv_knft *dv_knft_free(struct dv_knft *k)
{
	if (!k)
		return NULL;
	dv_knft_wait(k);
	if (k->nft)
		nft_ctx_free(k->nft);
	free(k);
	return NULL;
}

/* Run text as one transaction; nft's complaint, trimmed, in *ret_error. */
static int run(struct dv_knft *k, const char *text, char **ret_error)
{
	const char *err;
	int r;

	if (ret_error)
		*ret_error = NULL;
	r = nft_run_cmd_from_buffer(k->nft, text);
	err = nft_ctx_get_error_buffer(k->nft);
	if (r == 0)
		return 0;
	if (ret_error) {
		size_t n = err ? strlen(err) : 0;

		while (n && err[n - 1] == '\n')
			n--;
		*ret_error = n ? strndup(err, n) : strdup("nft failed without a message");
	}
	return -EIO;
}

int dv_knft_run(struct dv_knft *k, const char *text, char **ret_error)
{
	return run(k, text, ret_error);
}

/* ---- a set's elements over netlink ---- */

#define NL_RX_SIZE (64u << 10)
#define DUMP_TIMEOUT_MS 1000 /* between two datagrams of a dump */

struct elems {
	dv_knft_elem_fn cb;
	void *ud;
	int r;
};

/* Attributes of one nest by type, those above max ignored. */
struct attrs {
	const struct nlattr **tb;
	unsigned max;
};

static int collect_cb(const struct nlattr *a, void *data)
{
	struct attrs *x = data;
	unsigned t = mnl_attr_get_type(a);

	if (t <= x->max)
		x->tb[t] = a;
	return MNL_CB_OK;
}

/* The bytes of an NFTA_DATA_VALUE inside nest a. */
static const uint8_t *data_value(const struct nlattr *a, size_t *ret_len)
{
	const struct nlattr *tb[NFTA_DATA_MAX + 1] = {0};
	struct attrs x = {tb, NFTA_DATA_MAX};

	if (!a || mnl_attr_parse_nested(a, collect_cb, &x) < 0 || !tb[NFTA_DATA_VALUE])
		return NULL;
	*ret_len = mnl_attr_get_payload_len(tb[NFTA_DATA_VALUE]);
	return mnl_attr_get_payload(tb[NFTA_DATA_VALUE]);
}

static int elem_cb(const struct nlattr *a, void *data)
{
	struct elems *x = data;
	const struct nlattr *tb[NFTA_SET_ELEM_MAX + 1] = {0};
	struct attrs at = {tb, NFTA_SET_ELEM_MAX};
	struct dv_knft_elem e = {0};

	if (mnl_attr_get_type(a) != NFTA_LIST_ELEM || mnl_attr_parse_nested(a, collect_cb, &at) < 0)
		return MNL_CB_OK;
	e.key = data_value(tb[NFTA_SET_ELEM_KEY], &e.key_len);
	if (!e.key)
		return MNL_CB_OK;
	e.data = data_value(tb[NFTA_SET_ELEM_DATA], &e.data_len);
	if (tb[NFTA_SET_ELEM_EXPIRATION] && mnl_attr_get_payload_len(tb[NFTA_SET_ELEM_EXPIRATION]) == 8)
		e.expires_ms = be64toh(mnl_attr_get_u64(tb[NFTA_SET_ELEM_EXPIRATION]));
	x->r = x->cb(x->ud, &e);
	return x->r < 0 ? MNL_CB_STOP : MNL_CB_OK;
}

static int setelem_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elems *x = data;
	const struct nlattr *tb[NFTA_SET_ELEM_LIST_MAX + 1] = {0};
	struct attrs at = {tb, NFTA_SET_ELEM_LIST_MAX};

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), collect_cb, &at) < 0) {
		x->r = -EBADMSG;
		return MNL_CB_STOP;
	}
	if (tb[NFTA_SET_ELEM_LIST_ELEMENTS])
		(void)mnl_attr_parse_nested(tb[NFTA_SET_ELEM_LIST_ELEMENTS], elem_cb, x);
	return x->r < 0 ? MNL_CB_STOP : MNL_CB_OK;
}

int dv_knft_elements(const char *set, dv_knft_elem_fn cb, void *ud)
{
	struct dv_nl nl = {0};
	struct elems x = {.cb = cb, .ud = ud};
	uint8_t buf[512] __attribute__((aligned(8))); /* the request: a header and two names */
	struct nlmsghdr *nlh;
	struct nfgenmsg *g;
	int r = dv_nl_open(&nl, NETLINK_NETFILTER, NL_RX_SIZE, 0);

	if (r < 0)
		return r;
	nlh = dv_nl_msg(&nl, buf, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM, NLM_F_DUMP);
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = NFPROTO_NETDEV;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, DV_DIST_TABLE);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
	r = dv_nl_send(&nl, nlh, nlh->nlmsg_len);
	/*
	 * Read the dump here rather than with dv_nl_wait(): a walk that cb
	 * stops must stop the dump too, and only closing the socket does
	 * (dv_nl_wait reads to the end). The kernel dumps a datagram per
	 * read, each walking the set from its start.
	 */
	while (r == 0) {
		ssize_t len = dv_nl_recv(&nl);
		struct pollfd pfd = {.fd = dv_nl_fd(&nl), .events = POLLIN};

		if (len == -EINTR)
			continue;
		if (len == -EAGAIN) {
			r = poll(&pfd, 1, DUMP_TIMEOUT_MS);
			r = r > 0 ? 0 : r == 0 ? -ETIMEDOUT : errno == EINTR ? 0 : -errno;
			continue;
		}
		if (len < 0) {
			r = (int)len;
			break;
		}
		r = mnl_cb_run(nl.rx, (size_t)len, nlh->nlmsg_seq, nl.portid, setelem_msg_cb, &x);
		if (r == MNL_CB_STOP)
			break; /* NLMSG_DONE, or cb stopped */
		r = r == MNL_CB_ERROR ? (x.r < 0 ? x.r : -errno) : 0;
	}
	dv_nl_close(&nl);
	return r < 0 ? r : x.r < 0 ? x.r : 0;
}

enum text { TEXT_TABLE, TEXT_SLOTS, TEXT_INGRESS };

/* The text a writer produces, in a buffer of its own: the whole table, the
 * slot maps of the services marked changed, or the base chain's rules. */
static int text_of(const struct dv_dist_ruleset *rs, enum text what, const uint32_t *const *old, const char *prefix,
		   char **ret)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r = 0;

	if (!f)
		return -ENOMEM;
	fputs(prefix, f);
	if (what == TEXT_TABLE)
		r = dv_dist_rules_write(rs, f);
	else if (what == TEXT_INGRESS)
		r = dv_dist_rules_write_ingress(rs, f);
	for (size_t i = 0; what == TEXT_SLOTS && i < rs->n_services && r == 0; i++)
		if (!old)
			r = dv_dist_rules_write_slots(rs, i, f);
		else if (old[i])
			r = dv_dist_rules_write_slot_delta(rs, i, old[i], f);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0)
		return r;
	*ret = TAKE_PTR(text);
	return 0;
}

/* "add" first so that "delete" never fails for a missing table. */
#define REPLACE                                                                                                        \
	"add table netdev " DV_DIST_TABLE "\ndelete table netdev " DV_DIST_TABLE "\nadd table inet " DV_DIST_TABLE     \
	"\ndelete table inet " DV_DIST_TABLE "\n"

static int run_text(struct dv_knft *k, const struct dv_dist_ruleset *rs, enum text what, const uint32_t *const *old,
		    const char *prefix, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	int r = text_of(rs, what, old, prefix, &text);

	if (r < 0) {
		if (ret_error)
			*ret_error = NULL;
		return r;
	}
	return run(k, text, ret_error);
}

int dv_knft_replace(struct dv_knft *k, const struct dv_dist_ruleset *rs, char **ret_error)
{
	return run_text(k, rs, TEXT_TABLE, NULL, REPLACE, ret_error);
}

int dv_knft_set_slots(struct dv_knft *k, const struct dv_dist_ruleset *rs, const uint32_t *const *old, char **ret_error)
{
	return run_text(k, rs, TEXT_SLOTS, old, "", ret_error);
}

int dv_knft_set_ingress(struct dv_knft *k, const struct dv_dist_ruleset *rs, char **ret_error)
{
	return run_text(k, rs, TEXT_INGRESS, NULL, "", ret_error);
}

int dv_knft_remove(struct dv_knft *k, char **ret_error)
{
	/* A listing costs a dump; a transaction a commit, which waits for
	 * the kernel's grace periods: slow on a loaded machine, and at start
	 * there is mostly nothing to remove. */
	if (run(k, "list table netdev " DV_DIST_TABLE "\n", NULL) < 0 &&
	    run(k, "list table inet " DV_DIST_TABLE "\n", NULL) < 0) {
		if (ret_error)
			*ret_error = NULL;
		return 0;
	}
	return run(k, REPLACE, ret_error);
}

/* ---- in the background ---- */

bool dv_knft_busy(const struct dv_knft *k)
{
	return k && k->pid > 0;
}

static void bg_end(struct dv_knft *k)
{
	int status;

	k->src = sd_event_source_disable_unref(k->src);
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	/* Its end of the pipe closes as it exits: not long to wait. */
	while (waitpid(k->pid, &status, 0) < 0 && errno == EINTR)
		;
	k->pid = 0;
}

static int bg_readable(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct dv_knft *k = ud;
	dv_knft_done_fn done = k->done;
	ssize_t n;
	int r;

	(void)s;
	(void)revents;
	n = read(fd, k->out + k->n_out, sizeof(k->out) - 1 - k->n_out);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n > 0 && k->n_out + (size_t)n < sizeof(k->out) - 1) {
		k->n_out += (size_t)n;
		return 0;
	}
	if (n > 0)
		k->n_out += (size_t)n; /* full: the message is cut there */
	k->out[k->n_out] = '\0';
	bg_end(k);
	/* A child that died without a word failed too. */
	r = k->n_out > 0 && k->out[0] == '0' ? 0 : -EIO;
	k->done = NULL;
	if (done)
		done(k->ud, r, r < 0 && k->n_out > 1 ? k->out + 1 : NULL);
	return 0;
}

static int run_bg(struct dv_knft *k, sd_event *ev, char *text, dv_knft_done_fn done, void *ud)
{
	int p[2];
	pid_t pid;
	int r;

	if (k->pid > 0)
		return -EBUSY;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		/* Only nft and the pipe here: the daemon's descriptors are
		 * closed (a client must see its connection end when the daemon
		 * closes it, not when this copy exits), nft gets a context of
		 * its own, and _exit runs none of the daemon's handlers. */
		struct nft_ctx *nft;
		const char *err = NULL;
		size_t len;
		ssize_t w;

		if (dup2(p[1], 3) != 3 || close_range(4, ~0U, 0) < 0)
			_exit(1);
		nft = nft_ctx_new(NFT_CTX_DEFAULT);
		if (!nft || nft_ctx_buffer_output(nft) < 0 || nft_ctx_buffer_error(nft) < 0)
			_exit(1);
		r = nft_run_cmd_from_buffer(nft, text);
		err = nft_ctx_get_error_buffer(nft);
		len = err ? strlen(err) : 0;
		while (len && err[len - 1] == '\n')
			len--;
		w = write(3, r == 0 ? "0" : "1", 1);
		if (w == 1 && r != 0 && len)
			w = write(3, err, len < BG_ERROR_MAX ? len : BG_ERROR_MAX);
		_exit(w < 0);
	}
	close(p[1]);
	k->pid = pid;
	k->fd = p[0];
	k->n_out = 0;
	r = sd_event_add_io(ev, &k->src, k->fd, EPOLLIN, bg_readable, k);
	if (r < 0) {
		bg_end(k);
		return r;
	}
	k->done = done;
	k->ud = ud;
	return 0;
}

int dv_knft_replace_bg(struct dv_knft *k, sd_event *ev, const struct dv_dist_ruleset *rs, dv_knft_done_fn done,
		       void *ud)
{
	_cleanup_free_ char *text = NULL;
	int r = k->pid > 0 ? -EBUSY : text_of(rs, TEXT_TABLE, NULL, REPLACE, &text);

	return r < 0 ? r : run_bg(k, ev, text, done, ud);
}

int dv_knft_set_slots_bg(struct dv_knft *k, sd_event *ev, const struct dv_dist_ruleset *rs, const uint32_t *const *old,
			 dv_knft_done_fn done, void *ud)
{
	_cleanup_free_ char *text = NULL;
	int r = k->pid > 0 ? -EBUSY : text_of(rs, TEXT_SLOTS, old, "", &text);

	return r < 0 ? r : run_bg(k, ev, text, done, ud);
}

void dv_knft_wait(struct dv_knft *k)
{
	if (k && k->pid > 0) {
		k->done = NULL;
		bg_end(k);
	}
}
