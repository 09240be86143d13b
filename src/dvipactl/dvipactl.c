/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dvipactl: the operator's view of dvipad. See dvipactl(8).
 *
 * Display verbs speak the control protocol directly (proto.h) and turn the
 * daemon's RECORD messages into one json-c tree; --json prints that tree,
 * text mode renders it, so the two outputs cannot disagree. Operator verbs
 * (activate, deactivate, reload) are a single request each. "run" uses
 * libdvipa like any application would and supervises a command.
 *
 * Exit codes are the daemon's result codes (result.h), see usage().
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "addr.h"
#include "ctlsock.h"
#include "dvipa.h"
#include "listen.h"
#include "proto.h"
#include "result.h"

/* Exit codes besides the result codes. */
#define EXIT_FAILURE_OTHER 1
#define EXIT_USAGE DV_R_BADREQ
#define EXIT_UNREACH DV_R_UNREACH

/* A reply is a few records per VIPA; a daemon that sends more than this is
 * broken, and we would rather say so than grow without bound. */
#define MAX_RECORDS 200000
#define MAX_VIPAS 256
#define DEFAULT_RANK 100

struct ctl {
	const char *sock_path; /* -S, or NULL: $DVIPA_SOCKET, then the default */
	bool json;
	int fd;
	uint32_t seq;
	const char *node; /* DV_A_NODE of the next request, or NULL */
	uint32_t port;	  /* DV_A_PORT of the next request, or 0 */
};

struct verb {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *args;
	const char *help;
	bool display; /* takes --json */
};

static const struct verb *current_verb;

static void usage_line(FILE *f, const struct verb *v);
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the control socket ---- */

static const char *sock_path(const struct ctl *c)
{
	const char *p = c->sock_path;

	if (!p || !*p)
		p = getenv("DVIPA_SOCKET");
	if (!p || !*p)
		p = DV_DEFAULT_SOCKET;
	return p;
}

/*
 * Why dvipactl could not connect to path (err), as one line that says what
 * to do: connect() says "connection refused" for a directory, a plain file
 * and a socket nobody listens on alike.
 */
static void say_unreachable(const char *path, int err)
{
	static const char where[] = "dvipad listens on " DV_DEFAULT_SOCKET " unless started with -S PATH";
	struct stat st;
	bool exists = stat(path, &st) == 0;

	if (exists && S_ISDIR(st.st_mode))
		fprintf(stderr, "dvipactl: '%s' is a directory, not dvipad's socket (%s)\n", path, where);
	else if (exists && !S_ISSOCK(st.st_mode))
		fprintf(stderr, "dvipactl: '%s' is not a socket, not dvipad's socket (%s)\n", path, where);
	else if (err == ENOENT)
		fprintf(stderr, "dvipactl: no socket at '%s': is dvipad running? (%s)\n", path, where);
	else if (err == ECONNREFUSED)
		fprintf(stderr, "dvipactl: nothing listens on '%s': is dvipad running? (%s)\n", path, where);
	else if (err == ETIMEDOUT)
		fprintf(stderr,
			"dvipactl: dvipad on '%s' accepted no connection in %d seconds (stopped? overloaded?)\n", path,
			DV_CTL_TIMEOUT_S);
	else
		fprintf(stderr, "dvipactl: cannot connect to dvipad at '%s': %s\n", path, strerror(err));
}

static int ctl_connect(struct ctl *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = sock_path(c);
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "dvipactl: socket path '%s' is too long\n", path);
		return EXIT_USAGE;
	}
	strcpy(sa.sun_path, path);
	fd = dv_ctl_connect(&sa, sizeof(sa), dv_now_ms() + DV_CTL_TIMEOUT_MS, connect);
	if (fd < 0) {
		say_unreachable(path, -fd);
		return EXIT_UNREACH;
	}
	/* Blocking from here on: every wait for an answer is a poll() with
	 * its own limit (ctl_recv()). */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		fprintf(stderr, "dvipactl: fcntl: %s\n", strerror(errno));
		close(fd);
		return EXIT_FAILURE_OTHER;
	}
	c->fd = fd;
	return 0;
}

/* ---- records to a json-c tree (the one code path for both outputs) ---- */

struct tree {
	json_object *root;
	json_object *last_vipa;
	size_t records;
};

static json_object *tree_array(struct tree *t, const char *key)
{
	json_object *a;

	if (!json_object_object_get_ex(t->root, key, &a) || !json_object_is_type(a, json_type_array)) {
		a = json_object_new_array();
		json_object_object_add(t->root, key, a);
	}
	return a;
}

static const char *jstr(json_object *o, const char *key, const char *dflt)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return dflt;
	return json_object_get_string(v);
}

static uint64_t ju64(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_uint64(v);
}

static bool jbool(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return false;
	return json_object_get_boolean(v);
}

static size_t jlen(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
		return 0;
	return json_object_array_length(v);
}

/* The VIPA a HOLD or STANDBY belongs to: it follows its VIPA, but match
 * the address anyway rather than trust the order blindly. */
static json_object *find_vipa(struct tree *t, json_object *rec)
{
	const char *addr = jstr(rec, "addr", NULL);
	json_object *vipas;

	if (!addr)
		return t->last_vipa;
	if (t->last_vipa && strcmp(jstr(t->last_vipa, "addr", ""), addr) == 0)
		return t->last_vipa;
	vipas = tree_array(t, "vipas");
	for (size_t i = json_object_array_length(vipas); i-- > 0;) {
		json_object *v = json_object_array_get_idx(vipas, i);

		if (strcmp(jstr(v, "addr", ""), addr) == 0)
			return v;
	}
	return NULL;
}

/* Place one record; takes ownership of rec. Unknown record types are kept
 * under "other" so that --json passes them through. */
static void tree_add(struct tree *t, uint32_t rectype, json_object *rec)
{
	json_object *v;

	switch (rectype) {
	case DV_REC_DAEMON:
		json_object_object_add(t->root, "daemon", rec);
		break;
	case DV_REC_MEMBER:
		json_object_array_add(tree_array(t, "members"), rec);
		break;
	case DV_REC_VIPA:
		json_object_object_add(rec, "holds", json_object_new_array());
		json_object_object_add(rec, "standbys", json_object_new_array());
		json_object_object_add(rec, "moving", json_object_new_array());
		json_object_array_add(tree_array(t, "vipas"), rec);
		t->last_vipa = rec;
		break;
	case DV_REC_HOLD:
	case DV_REC_STANDBY:
	case DV_REC_MOVING: {
		const char *key = rectype == DV_REC_HOLD ? "holds" : rectype == DV_REC_STANDBY ? "standbys" : "moving";

		v = find_vipa(t, rec);
		if (v && json_object_object_get_ex(v, key, &v) && json_object_is_type(v, json_type_array))
			json_object_array_add(v, rec);
		else
			json_object_array_add(tree_array(t, key), rec);
		break;
	}
	case DV_REC_RANGE:
		json_object_array_add(tree_array(t, "ranges"), rec);
		break;
	case DV_REC_DEFINE:
		json_object_array_add(tree_array(t, "defines"), rec);
		break;
	case DV_REC_TARGET:
		json_object_array_add(tree_array(t, "targets"), rec);
		break;
	case DV_REC_CONN:
		json_object_array_add(tree_array(t, "conns"), rec);
		break;
	case DV_REC_TEXT:
		if (json_object_object_get_ex(rec, "text", &v))
			json_object_array_add(tree_array(t, "text"), json_object_get(v));
		json_object_put(rec);
		break;
	default:
		json_object_object_add(rec, "rectype", json_object_new_int64(rectype));
		json_object_array_add(tree_array(t, "other"), rec);
		break;
	}
}

/* One RECORD message to a json object of its fields. 0, or -EBADMSG. */
static int record_to_json(const struct dv_msg *m, uint32_t *ret_type, json_object **ret)
{
	json_object *o = json_object_new_object();
	bool has_type = false;
	struct dv_attr_iter it;
	const void *v;
	uint16_t t;
	size_t n;

	dv_attr_iter_init(&it, m);
	while (dv_attr_next(&it, &t, &v, &n)) {
		const char *key, *str;
		uint64_t u64;
		uint8_t ft;
		bool b;

		if (t == DV_A_RECTYPE) {
			if (has_type || dv_val_u32(v, n, ret_type) < 0)
				goto bad;
			has_type = true;
			continue;
		}
		if (t != DV_A_FIELD)
			continue;
		/* A field type from a newer daemon: skip it, keep the rest. */
		if (n >= 1 && ((const uint8_t *)v)[0] > DV_F_BOOL)
			continue;
		if (dv_val_field(v, n, &ft, &key, &str, &u64, &b) < 0)
			goto bad;
		if (ft == DV_F_STR)
			json_object_object_add(o, key, json_object_new_string(str));
		else if (ft == DV_F_U64)
			json_object_object_add(o, key, json_object_new_uint64(u64));
		else
			json_object_object_add(o, key, json_object_new_boolean(b));
	}
	if (!has_type)
		goto bad;
	*ret = o;
	return 0;
bad:
	json_object_put(o);
	return -EBADMSG;
}

/*
 * Send one request and read its reply: RECORDs (into t, if given) until the
 * RESULT with our seq. 0 and the RESULT in *ret, or an exit code after a
 * message on stderr.
 */
static int result_exit(uint32_t r);

/* A send or receive failed with e: the exit status, once said why. A
 * connection dvipad refused at the door has the reason waiting (behind the
 * reset of our request, when it came first). */
static int io_failed(struct ctl *c, const char *doing, int e)
{
	struct dv_reply rep;
	int refused = dv_ctl_refusal(c->fd, &rep);

	if (refused >= 0) {
		fprintf(stderr, "dvipactl: %s\n", rep.reason);
		return result_exit((uint32_t)refused);
	}
	fprintf(stderr, "dvipactl: %s dvipad: %s\n", doing, strerror(e));
	return EXIT_UNREACH;
}

static int ctl_send(struct ctl *c, uint16_t type, const struct dv_addr *addr, uint32_t kind, uint32_t seq)
{
	static struct dv_msgb b;

	dv_msgb_init(&b, type, seq);
	if (addr)
		dv_msgb_put_addr(&b, addr);
	if (kind)
		dv_msgb_put_u32(&b, DV_A_KIND, kind);
	if (c->node)
		dv_msgb_put_str(&b, DV_A_NODE, c->node);
	if (c->port)
		dv_msgb_put_u32(&b, DV_A_PORT, c->port);
	if (dv_msgb_finish(&b) < 0) {
		fprintf(stderr, "dvipactl: cannot build the request\n");
		return DV_R_INTERNAL;
	}
	if (send(c->fd, b.buf, b.len, MSG_NOSIGNAL) < 0)
		return io_failed(c, "sending to", errno);
	return 0;
}

/*
 * One message from dvipad into buf, parsed into *m: 0, -EINTR to wait
 * again, or the exit status once the reason is printed.
 */
static int ctl_recv(struct ctl *c, uint8_t *buf, size_t size, struct dv_msg *m)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;
	int r;

	r = poll(&pfd, 1, DV_CTL_TIMEOUT_S * 1000);
	if (r < 0 && errno == EINTR)
		return -EINTR;
	if (r == 0) {
		fprintf(stderr, "dvipactl: no answer from dvipad in %d seconds\n", DV_CTL_TIMEOUT_S);
		return EXIT_UNREACH;
	}
	n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0 && errno == EINTR)
		return -EINTR;
	if (n < 0)
		return io_failed(c, "receiving from", errno);
	if (n == 0) {
		fprintf(stderr, "dvipactl: dvipad closed the connection\n");
		return EXIT_UNREACH;
	}
	if (mh.msg_flags & MSG_TRUNC) {
		fprintf(stderr, "dvipactl: oversized message from dvipad\n");
		return EXIT_FAILURE_OTHER;
	}
	r = dv_msg_parse(buf, (size_t)n, m);
	if (r == -EPROTONOSUPPORT) {
		fprintf(stderr, "dvipactl: dvipad speaks another protocol version\n");
		return EXIT_FAILURE_OTHER;
	}
	if (r < 0) {
		fprintf(stderr, "dvipactl: malformed message from dvipad\n");
		return EXIT_FAILURE_OTHER;
	}
	return 0;
}

static int take_record(struct tree *t, const struct dv_msg *m)
{
	json_object *rec;
	uint32_t rt;

	if (record_to_json(m, &rt, &rec) < 0) {
		fprintf(stderr, "dvipactl: malformed record from dvipad\n");
		return EXIT_FAILURE_OTHER;
	}
	if (++t->records > MAX_RECORDS) {
		json_object_put(rec);
		fprintf(stderr, "dvipactl: more than %d records from dvipad\n", MAX_RECORDS);
		return EXIT_FAILURE_OTHER;
	}
	tree_add(t, rt, rec);
	return 0;
}

static int ctl_transact(struct ctl *c, uint16_t type, const struct dv_addr *addr, uint32_t kind, struct tree *t,
			struct dv_reply *ret)
{
	static uint8_t buf[DV_MSG_MAX];
	uint32_t seq = ++c->seq;
	int r;

	r = ctl_send(c, type, addr, kind, seq);
	if (r != 0)
		return r;
	for (;;) {
		struct dv_msg m;

		r = ctl_recv(c, buf, sizeof(buf), &m);
		if (r == -EINTR)
			continue;
		if (r != 0)
			return r;
		/* A RESULT of seq 0: dvipad refused the connection itself. */
		if (m.seq == 0 && m.type == DV_MSG_RESULT && dv_reply_decode(&m, ret) == 0) {
			fprintf(stderr, "dvipactl: %s\n", ret->reason);
			return result_exit(ret->result);
		}
		if (m.seq != seq)
			continue; /* EVENTs (seq 0) and anything not ours */
		if (m.type == DV_MSG_RECORD) {
			if (!t)
				continue;
			r = take_record(t, &m);
			if (r != 0)
				return r;
		} else if (m.type == DV_MSG_RESULT) {
			if (dv_reply_decode(&m, ret) < 0) {
				fprintf(stderr, "dvipactl: malformed result from dvipad\n");
				return EXIT_FAILURE_OTHER;
			}
			return 0;
		}
	}
}

/* A result code as an exit code: the numbers are shared; anything this
 * version does not know is "other failure". */
static int result_exit(uint32_t r)
{
	if (r == DV_R_OK)
		return 0;
	if (r >= DV_R_BADREQ && r <= DV_R_LEFT)
		return (int)r;
	return EXIT_FAILURE_OTHER;
}

static const char *reason_or_text(const struct dv_reply *rep)
{
	return rep->reason[0] ? rep->reason : dvipa_strerror((int)rep->result);
}

/* "dvipactl VERB [ADDR]: why" for a refused request; its exit status. */
static int request_refused(const struct dv_reply *rep, const char *addr)
{
	if (addr)
		fprintf(stderr, "dvipactl: %s %s: %s\n", current_verb->name, addr, reason_or_text(rep));
	else
		fprintf(stderr, "dvipactl: %s: %s\n", current_verb->name, reason_or_text(rep));
	return result_exit(rep->result);
}

/* ---- text rendering of the tree ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "since" as an age: 42s, 5m03s, 2h07m, 3d04h; "-" when unknown. */
static const char *fmt_age(uint64_t since, char buf[static 32])
{
	uint64_t now = now_ms(), s;

	if (since == 0)
		return "-";
	s = now > since ? (now - since) / 1000 : 0;
	if (s < 60)
		snprintf(buf, 32, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, 32, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, 32, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, 32, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

/* A node's name, or "node N" when the daemon did not know it. */
static const char *fmt_node(json_object *o, const char *name_key, const char *id_key, char buf[static 32])
{
	const char *name = jstr(o, name_key, "");
	uint64_t id = ju64(o, id_key);

	if (*name)
		return name;
	if (id == 0)
		return "-";
	snprintf(buf, 32, "node %" PRIu64, id);
	return buf;
}

enum { COL_ADDR, COL_STATE, COL_OWNER, COL_ORIGIN, COL_SINCE, COL_HOLDS, COL_STANDBYS, NCOLS };

static void print_row(char cells[NCOLS][DV_REASON_MAX], const int width[NCOLS])
{
	for (int i = 0; i < NCOLS; i++) {
		if (i == NCOLS - 1)
			printf("%s\n", cells[i]);
		else
			printf("%-*s  ", width[i], cells[i]);
	}
}

static void vipa_cells(json_object *v, char cells[NCOLS][DV_REASON_MAX])
{
	char buf[32];

	snprintf(cells[COL_ADDR], DV_REASON_MAX, "%s", jstr(v, "addr", "?"));
	snprintf(cells[COL_STATE], DV_REASON_MAX, "%s", jstr(v, "state", "?"));
	snprintf(cells[COL_OWNER], DV_REASON_MAX, "%s", fmt_node(v, "owner_name", "owner", buf));
	snprintf(cells[COL_ORIGIN], DV_REASON_MAX, "%s", jstr(v, "origin", "-"));
	snprintf(cells[COL_SINCE], DV_REASON_MAX, "%s", fmt_age(ju64(v, "since"), buf));
	snprintf(cells[COL_HOLDS], DV_REASON_MAX, "%zu", jlen(v, "holds"));
	snprintf(cells[COL_STANDBYS], DV_REASON_MAX, "%zu", jlen(v, "standbys"));
}

static void print_holder(json_object *h, bool standby)
{
	char node[32], age[32], pid[64] = "";

	if (ju64(h, "pid") && *jstr(h, "command", ""))
		snprintf(pid, sizeof(pid), ", pid %" PRIu64 " (%s)", ju64(h, "pid"), jstr(h, "command", ""));
	else if (ju64(h, "pid"))
		snprintf(pid, sizeof(pid), ", pid %" PRIu64, ju64(h, "pid"));
	if (standby)
		printf("    standby rank %" PRIu64 " on %s (uid %" PRIu64 "%s) since %s\n", ju64(h, "rank"),
		       fmt_node(h, "node_name", "node", node), ju64(h, "uid"), pid, fmt_age(ju64(h, "since"), age));
	else
		printf("    hold %s on %s (uid %" PRIu64 "%s) since %s\n", jstr(h, "kind", "?"),
		       fmt_node(h, "node_name", "node", node), ju64(h, "uid"), pid, fmt_age(ju64(h, "since"), age));
}

static void render_daemon(json_object *d, json_object *members)
{
	printf("Node %s (id %" PRIu64 "), cluster %s, quorate %s, interface %s\n", jstr(d, "node", "?"),
	       ju64(d, "nodeid"), jstr(d, "cluster", "?"), jbool(d, "quorate") ? "yes" : "no",
	       jstr(d, "interface", "?"));
	if (strcmp(jstr(d, "cluster", "none"), "none") != 0 && members && json_object_array_length(members) > 0) {
		printf("Members:");
		for (size_t i = 0; i < json_object_array_length(members); i++) {
			json_object *m = json_object_array_get_idx(members, i);

			const char *name = jstr(m, "name", "");

			/* A member's name comes with its configuration, which
			 * it publishes once it has the group's state. */
			printf("%s %s (%" PRIu64 "%s%s)", i ? "," : "", *name ? name : "(not yet published)",
			       ju64(m, "nodeid"), jbool(m, "self") ? ", self" : "",
			       jbool(m, "left") ? ", left the group" : "");
		}
		printf("\n");
		if (*jstr(d, "sync", ""))
			printf("State: %s, digest %s at check point %" PRIu64 ", %" PRIu64 " exchange(s)\n",
			       jstr(d, "sync", "?"), *jstr(d, "digest", "") ? jstr(d, "digest", "") : "none yet",
			       ju64(d, "check"), ju64(d, "exchanges"));
		if (*jstr(d, "gate", "") && strcmp(jstr(d, "gate", ""), "open") != 0)
			printf("Addresses: none on this node (%s)\n", jstr(d, "gate", ""));
		for (size_t i = 0; i < json_object_array_length(members); i++) {
			json_object *m = json_object_array_get_idx(members, i);

			if (jbool(m, "digest_differs"))
				printf("Warning: the state of %s (digest %s) differs from this node's; the group "
				       "exchanges states again\n",
				       jstr(m, "name", "?"), jstr(m, "digest", "?"));
			if (*jstr(m, "config_differs", ""))
				printf("Warning: configuration of %s differs: %s\n", jstr(m, "name", "?"),
				       jstr(m, "config_differs", ""));
		}
	}
	printf("\n");
}

/* The lines under a VIPA's row: its holders, standbys, the nodes it is
 * MOVING on, and why it is as it is. */
static void render_vipa_details(json_object *v)
{
	const char *reason = jstr(v, "reason", "");
	json_object *a;

	if (json_object_object_get_ex(v, "holds", &a))
		for (size_t k = 0; k < json_object_array_length(a); k++)
			print_holder(json_object_array_get_idx(a, k), false);
	if (json_object_object_get_ex(v, "standbys", &a))
		for (size_t k = 0; k < json_object_array_length(a); k++)
			print_holder(json_object_array_get_idx(a, k), true);
	if (json_object_object_get_ex(v, "moving", &a))
		for (size_t k = 0; k < json_object_array_length(a); k++) {
			json_object *m = json_object_array_get_idx(a, k);
			char node[32];

			printf("    MOVING on %s: %" PRIu64 " connection(s) left there, their packets routed to it\n",
			       fmt_node(m, "node_name", "node", node), ju64(m, "connections"));
		}
	if (*jstr(v, "deactivated_on", ""))
		printf("    deactivated on: %s\n", jstr(v, "deactivated_on", ""));
	if (ju64(v, "lost_pid"))
		printf("    lost here: pid %" PRIu64 " (%s) still has sockets bound to it on this node\n",
		       ju64(v, "lost_pid"), jstr(v, "lost_command", "?"));
	if (*reason)
		printf("    reason: %s\n", reason);
}

/* A table of NCOLS columns, a row per element of rows (cells_of fills it),
 * each followed by what details prints (if not NULL). */
static void render_table(const char *const heads[NCOLS], json_object *rows,
			 void (*cells_of)(json_object *, char[NCOLS][DV_REASON_MAX]), void (*details)(json_object *))
{
	static char cells[NCOLS][DV_REASON_MAX];
	size_t n = rows ? json_object_array_length(rows) : 0;
	int width[NCOLS];

	for (int i = 0; i < NCOLS; i++)
		width[i] = (int)strlen(heads[i]);
	for (size_t i = 0; i < n; i++) {
		cells_of(json_object_array_get_idx(rows, i), cells);
		for (int j = 0; j < NCOLS; j++)
			if ((int)strlen(cells[j]) > width[j])
				width[j] = (int)strlen(cells[j]);
	}
	for (int j = 0; j < NCOLS; j++)
		snprintf(cells[j], DV_REASON_MAX, "%s", heads[j]);
	print_row(cells, width);

	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(rows, i);

		cells_of(v, cells);
		print_row(cells, width);
		if (details)
			details(v);
	}
}

static void render_vipas(json_object *vipas)
{
	static const char *const heads[NCOLS] = {"ADDR", "STATE", "OWNER", "ORIGIN", "SINCE", "HOLDS", "STANDBYS"};

	render_table(heads, vipas, vipa_cells, render_vipa_details);
}

static void render_status(json_object *root)
{
	json_object *d = NULL, *members = NULL, *vipas = NULL;

	json_object_object_get_ex(root, "daemon", &d);
	json_object_object_get_ex(root, "members", &members);
	json_object_object_get_ex(root, "vipas", &vipas);
	render_daemon(d, members);
	render_vipas(vipas);
}

static void render_config(json_object *root)
{
	json_object *text;

	if (!json_object_object_get_ex(root, "text", &text))
		return;
	for (size_t i = 0; i < json_object_array_length(text); i++)
		printf("%s\n", json_object_get_string(json_object_array_get_idx(text, i)));
}

/* dvipactl targets: a row per target and port (z/OS NETSTAT VDPT). */
static void target_cells(json_object *t, char cells[NCOLS][DV_REASON_MAX])
{
	snprintf(cells[0], DV_REASON_MAX, "%s", jstr(t, "addr", "?"));
	snprintf(cells[1], DV_REASON_MAX, "%" PRIu64, ju64(t, "port"));
	snprintf(cells[2], DV_REASON_MAX, "%s", jstr(t, "node", "?"));
	snprintf(cells[3], DV_REASON_MAX, "%s", jstr(t, "state", "?"));
	snprintf(cells[4], DV_REASON_MAX, "%" PRIu64, ju64(t, "weight"));
	snprintf(cells[5], DV_REASON_MAX, "%" PRIu64 "/%" PRIu64, ju64(t, "slots"), ju64(t, "m"));
	snprintf(cells[6], DV_REASON_MAX, "%s", *jstr(t, "distributor", "") ? jstr(t, "distributor", "") : "-");
}

static void render_targets(json_object *root)
{
	static const char *const heads[NCOLS] = {"ADDR", "PORT", "TARGET", "STATE", "WEIGHT", "SLOTS", "DISTRIBUTOR"};
	json_object *targets = NULL;

	json_object_object_get_ex(root, "targets", &targets);
	render_table(heads, targets, target_cells, NULL);
}

/* dvipactl conns: a row per pinned connection (z/OS NETSTAT VCRT); a
 * moved address's old owner's (state moving) has port 0 (any) and no
 * expiry: it lasts as long as MOVING. */
static void conn_cells(json_object *t, char cells[NCOLS][DV_REASON_MAX])
{
	uint64_t ms = ju64(t, "expires_ms");
	bool moving = strcmp(jstr(t, "state", ""), "moving") == 0;

	snprintf(cells[0], DV_REASON_MAX, "%s", jstr(t, "addr", "?"));
	if (moving)
		snprintf(cells[1], DV_REASON_MAX, "*");
	else
		snprintf(cells[1], DV_REASON_MAX, "%" PRIu64, ju64(t, "port"));
	snprintf(cells[2], DV_REASON_MAX, "%s", jstr(t, "client", "?"));
	snprintf(cells[3], DV_REASON_MAX, "%" PRIu64, ju64(t, "client_port"));
	snprintf(cells[4], DV_REASON_MAX, "%s", jstr(t, "target", "?"));
	snprintf(cells[5], DV_REASON_MAX, "%s", jstr(t, "state", "?"));
	if (moving)
		snprintf(cells[6], DV_REASON_MAX, "-");
	else
		snprintf(cells[6], DV_REASON_MAX, "%" PRIu64 ".%01" PRIu64 "s", ms / 1000, ms % 1000 / 100);
}

static void render_conns(json_object *root)
{
	static const char *const heads[NCOLS] = {"ADDR", "PORT", "CLIENT", "CPORT", "TARGET", "STATE", "EXPIRES"};
	json_object *conns = NULL;

	json_object_object_get_ex(root, "conns", &conns);
	render_table(heads, conns, conn_cells, NULL);
}

/* ---- verbs ---- */

static int parse_display_args(struct ctl *c, int argc, char **argv, int max_args)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int o;

	optind = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			c->json = true;
			break;
		case 'h':
			usage_line(stdout, current_verb);
			exit(0);
		default:
			return -usage_error(NULL);
		}
	}
	if (argc - optind > max_args)
		return -usage_error("too many arguments");
	return optind;
}

static int display(struct ctl *c, uint16_t type, const struct dv_addr *addr, const char *const keys[],
		   void (*render)(json_object *))
{
	struct tree t = {.root = json_object_new_object()};
	struct dv_reply rep;
	int r;

	/* The keys are there even when empty: a stable shape for scripts. */
	for (size_t i = 0; keys[i]; i++)
		json_object_object_add(t.root, keys[i],
				       strcmp(keys[i], "daemon") == 0 ? json_object_new_object()
								      : json_object_new_array());
	r = ctl_connect(c);
	if (r == 0)
		r = ctl_transact(c, type, addr, 0, &t, &rep);
	if (r == 0 && rep.result != DV_R_OK)
		r = request_refused(&rep, NULL);
	if (r == 0) {
		if (c->json)
			printf("%s\n", json_object_to_json_string_ext(t.root, JSON_C_TO_STRING_PRETTY |
										      JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			render(t.root);
		if (fflush(stdout) != 0) {
			fprintf(stderr, "dvipactl: writing output: %s\n", strerror(errno));
			r = EXIT_FAILURE_OTHER;
		}
	}
	json_object_put(t.root);
	return r;
}

static int parse_addr_arg(const char *s, struct dv_addr *ret)
{
	if (dv_addr_parse(s, ret) < 0)
		return usage_error("'%s' is not an IPv4 or IPv6 address", s);
	return 0;
}

/* A display verb with an optional address. */
static int display_of(struct ctl *c, int argc, char **argv, uint16_t type, const char *const keys[],
		      void (*render)(json_object *))
{
	struct dv_addr a;
	int i, r;

	i = parse_display_args(c, argc, argv, 1);
	if (i < 0)
		return -i;
	if (i < argc && (r = parse_addr_arg(argv[i], &a)) != 0)
		return r;
	return display(c, type, i < argc ? &a : NULL, keys, render);
}

static int cmd_status(struct ctl *c, int argc, char **argv)
{
	static const char *const keys[] = {"daemon", "members", "vipas", NULL};

	return display_of(c, argc, argv, DV_MSG_STATUS, keys, render_status);
}

static int cmd_config(struct ctl *c, int argc, char **argv)
{
	static const char *const keys[] = {"ranges", "defines", "text", NULL};
	int i;

	i = parse_display_args(c, argc, argv, 0);
	if (i < 0)
		return -i;
	return display(c, DV_MSG_CONFIG, NULL, keys, render_config);
}

/* The OpenMetrics text, as dvipad renders it (dvipad(8) lists the
 * metrics): for a node exporter's textfile collector, or a look by hand. */
static int cmd_metrics(struct ctl *c, int argc, char **argv)
{
	static const char *const keys[] = {"text", NULL};
	int i;

	i = parse_display_args(c, argc, argv, 0);
	if (i < 0)
		return -i;
	if (c->json)
		return usage_error("metrics prints OpenMetrics text; it has no --json");
	return display(c, DV_MSG_METRICS, NULL, keys, render_config);
}

/* One change as a line: "TIME EVENT ADDR from -> to (origin): reason". */
static void render_change(json_object *o)
{
	uint64_t ms = ju64(o, "time");
	time_t sec = (time_t)(ms / 1000);
	const char *ev = jstr(o, "event", "?");
	struct tm tm;
	char when[32];

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", gmtime_r(&sec, &tm));
	printf("%s.%03uZ %s", when, (unsigned)(ms % 1000), ev);
	if (strcmp(ev, "quorum") == 0) {
		printf(" %s", jbool(o, "quorate") ? "quorate" : "lost");
	} else if (strcmp(ev, "membership") == 0) {
		printf(" %s (%s)", jstr(o, "members", ""), jbool(o, "quorate") ? "quorate" : "not quorate");
	} else {
		printf(" %s", jstr(o, "addr", "?"));
		if (*jstr(o, "from", "") && *jstr(o, "to", ""))
			printf(" %s -> %s", jstr(o, "from", ""), jstr(o, "to", ""));
		else if (*jstr(o, "to", ""))
			printf(" on %s", jstr(o, "to", ""));
		else if (*jstr(o, "from", ""))
			printf(" from %s", jstr(o, "from", ""));
		if (*jstr(o, "origin", ""))
			printf(" (%s)", jstr(o, "origin", ""));
		if (*jstr(o, "reason", ""))
			printf(": %s", jstr(o, "reason", ""));
	}
	printf("\n");
}

/* Every change as dvipad applies it, until interrupted or dvipad goes:
 * like ip monitor. No timeout: a quiet cluster sends nothing. */
static int cmd_monitor(struct ctl *c, int argc, char **argv)
{
	static uint8_t buf[DV_MSG_MAX];
	struct dv_reply rep;
	struct dv_msg m;
	int i, r;

	i = parse_display_args(c, argc, argv, 0);
	if (i < 0)
		return -i;
	r = ctl_connect(c);
	if (r == 0)
		r = ctl_transact(c, DV_MSG_MONITOR, NULL, 0, NULL, &rep);
	if (r == 0 && rep.result != DV_R_OK)
		return request_refused(&rep, NULL);
	if (r != 0)
		return r;
	setvbuf(stdout, NULL, _IOLBF, 0); /* a line as soon as it happens, also into a pipe */
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		ssize_t n;
		json_object *o;
		uint32_t rt;

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return EXIT_FAILURE_OTHER;
		n = recv(c->fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			fprintf(stderr, "dvipactl: monitor: dvipad closed the connection\n");
			return EXIT_UNREACH;
		}
		if ((size_t)n > sizeof(buf) || dv_msg_parse(buf, (size_t)n, &m) < 0) {
			fprintf(stderr, "dvipactl: monitor: malformed message from dvipad\n");
			return EXIT_FAILURE_OTHER;
		}
		/* The last word of a monitor that fell behind. */
		if (m.type == DV_MSG_RESULT && dv_reply_decode(&m, &rep) == 0)
			return request_refused(&rep, NULL);
		if (m.type != DV_MSG_RECORD || record_to_json(&m, &rt, &o) < 0)
			continue;
		if (rt != DV_REC_CHANGE)
			;
		else if (c->json)
			printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
										 JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			render_change(o);
		json_object_put(o);
	}
}

static int cmd_targets(struct ctl *c, int argc, char **argv)
{
	static const char *const keys[] = {"targets", NULL};

	return display_of(c, argc, argv, DV_MSG_TARGETS, keys, render_targets);
}

static int cmd_conns(struct ctl *c, int argc, char **argv)
{
	static const char *const keys[] = {"conns", NULL};

	return display_of(c, argc, argv, DV_MSG_CONNS, keys, render_conns);
}

/* quiesce, resume: ADDR [--node NODE] [--port PORT], silent on success. */
static int quiesce_request(struct ctl *c, int argc, char **argv, uint16_t type)
{
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"port", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct tree t = {0};
	struct dv_reply rep;
	struct dv_addr a;
	char *end;
	unsigned long port;
	int o, r;

	if (c->json)
		return usage_error("--json applies to display verbs only");
	optind = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			if (!*optarg)
				return usage_error("a node name is required");
			if (strlen(optarg) >= DV_PROTO_NODE_MAX)
				return usage_error("node name '%s' is too long", optarg);
			c->node = optarg;
			break;
		case 'p':
			errno = 0;
			port = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || port < 1 || port > 65535 || *optarg == '-')
				return usage_error("--port '%s' is not a port (1..65535)", optarg);
			c->port = (uint32_t)port;
			break;
		case 'h':
			usage_line(stdout, current_verb);
			exit(0);
		default:
			return usage_error(NULL);
		}
	}
	if (optind >= argc)
		return usage_error("an address is required");
	if (argc - optind > 1)
		return usage_error("too many arguments");
	if ((r = parse_addr_arg(argv[optind], &a)) != 0)
		return r;
	t.root = json_object_new_object();
	r = ctl_connect(c);
	if (r == 0)
		r = ctl_transact(c, type, &a, 0, &t, &rep);
	if (r == 0 && rep.result != DV_R_OK)
		r = request_refused(&rep, argv[optind]);
	json_object_put(t.root);
	return r;
}

static int cmd_quiesce(struct ctl *c, int argc, char **argv)
{
	return quiesce_request(c, argc, argv, DV_MSG_QUIESCE);
}

static int cmd_resume(struct ctl *c, int argc, char **argv)
{
	return quiesce_request(c, argc, argv, DV_MSG_RESUME);
}

/* activate, deactivate, reload: one request, silent on success. */
static int operator_request(struct ctl *c, int argc, char **argv, uint16_t type, bool needs_addr)
{
	struct dv_reply rep;
	struct dv_addr a;
	int i, r;

	if (c->json)
		return usage_error("--json applies to display verbs only");
	i = parse_display_args(c, argc, argv, needs_addr ? 1 : 0);
	if (i < 0)
		return -i;
	if (c->json)
		return usage_error("--json applies to display verbs only");
	if (needs_addr) {
		if (i >= argc)
			return usage_error("an address is required");
		if ((r = parse_addr_arg(argv[i], &a)) != 0)
			return r;
	}
	/* A refused reload sends its configuration errors as TEXT records. */
	struct tree t = {.root = json_object_new_object()};
	json_object *text;

	r = ctl_connect(c);
	if (r == 0)
		r = ctl_transact(c, type, needs_addr ? &a : NULL, needs_addr ? DV_KIND_OPERATOR : 0, &t, &rep);
	if (r == 0 && rep.result != DV_R_OK) {
		if (json_object_object_get_ex(t.root, "text", &text))
			for (size_t k = 0; k < json_object_array_length(text); k++)
				fprintf(stderr, "%s\n", json_object_get_string(json_object_array_get_idx(text, k)));
		r = request_refused(&rep, needs_addr ? argv[i] : NULL);
	}
	json_object_put(t.root);
	return r;
}

static int cmd_activate(struct ctl *c, int argc, char **argv)
{
	return operator_request(c, argc, argv, DV_MSG_ACTIVATE, true);
}

static int cluster_request(struct ctl *c, int argc, char **argv, uint16_t type, bool needs_addr, bool node_is_to);

static int cmd_deactivate(struct ctl *c, int argc, char **argv)
{
	return cluster_request(c, argc, argv, DV_MSG_DEACTIVATE, true, false);
}

/*
 * The cluster operations: one request each, silent on success. ADDR (when
 * needs_addr) and a node option: --to (move, required) or --node (the
 * others, default this node). Plain "deactivate ADDR" stays the operator
 * hold's release; dvipad turns it into the define's deactivation when
 * ADDR is a define of the node and no operator hold of it exists.
 */
static int cluster_request(struct ctl *c, int argc, char **argv, uint16_t type, bool needs_addr, bool node_is_to)
{
	static const struct option opts[] = {
		{"to", required_argument, NULL, 't'},
		{"node", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct tree t = {0};
	struct dv_reply rep;
	struct dv_addr a;
	const char *node = NULL;
	int o, r;

	if (c->json)
		return usage_error("--json applies to display verbs only");
	optind = 0;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 't':
		case 'n':
			if ((o == 't') != node_is_to)
				return usage_error("%s does not take --%s", current_verb->name,
						   o == 't' ? "to" : "node");
			node = optarg;
			break;
		case 'h':
			usage_line(stdout, current_verb);
			exit(0);
		default:
			return usage_error(NULL);
		}
	}
	if (needs_addr && optind >= argc)
		return usage_error("an address is required");
	if (argc - optind > (needs_addr ? 1 : 0))
		return usage_error("too many arguments");
	if (node_is_to && !node)
		return usage_error("--to NODE is required");
	if (node && !*node)
		return usage_error("a node name is required");
	if (node && strlen(node) >= DV_PROTO_NODE_MAX)
		return usage_error("node name '%s' is too long", node);
	if (needs_addr && (r = parse_addr_arg(argv[optind], &a)) != 0)
		return r;
	/* deactivate without --node: the operator hold's release, as ever */
	if (type == DV_MSG_DEACTIVATE && !node)
		return operator_request(c, argc, argv, DV_MSG_RELEASE, true);
	c->node = node;
	t.root = json_object_new_object();
	r = ctl_connect(c);
	if (r == 0)
		r = ctl_transact(c, type, needs_addr ? &a : NULL, 0, &t, &rep);
	if (r == 0 && rep.result != DV_R_OK)
		r = request_refused(&rep, needs_addr ? argv[optind] : NULL);
	json_object_put(t.root);
	return r;
}

static int cmd_move(struct ctl *c, int argc, char **argv)
{
	return cluster_request(c, argc, argv, DV_MSG_MOVE, true, true);
}

static int cmd_reactivate(struct ctl *c, int argc, char **argv)
{
	return cluster_request(c, argc, argv, DV_MSG_REACTIVATE, true, false);
}

static int cmd_leave(struct ctl *c, int argc, char **argv)
{
	return cluster_request(c, argc, argv, DV_MSG_LEAVE, false, false);
}

static int cmd_join(struct ctl *c, int argc, char **argv)
{
	return cluster_request(c, argc, argv, DV_MSG_JOIN, false, false);
}

static int cmd_reload(struct ctl *c, int argc, char **argv)
{
	return operator_request(c, argc, argv, DV_MSG_RELOAD, false);
}

/* ---- run ---- */

struct run {
	size_t n;
	const char *text[MAX_VIPAS];
	struct dv_addr addr[MAX_VIPAS];
	bool granted[MAX_VIPAS];
	unsigned rank;
	int sig;
	pid_t child;			  /* 0 before the command runs */
	bool signalled;			  /* --signal was sent */
	const char *lost;		  /* before the command runs: an address lost */
	const char *source;		  /* --source: DVIPA_SOURCE of the command, through the shim */
	struct dv_listen_set listen;	  /* --listen: DVIPA_LISTEN of the command */
	char listen_vipa[DV_ADDR_STRLEN]; /* its VIPA, held like a --vipa */
};

static int parse_signal(const char *s)
{
	char *end;
	long v;

	if (*s >= '0' && *s <= '9') {
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || *end || v < 1 || v >= NSIG)
			return -1;
		return (int)v;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (int i = 1; i < NSIG; i++) {
		const char *name = sigabbrev_np(i);

		if (name && strcasecmp(name, s) == 0)
			return i;
	}
	return -1;
}

static ssize_t run_find(struct run *st, const char *text)
{
	struct dv_addr a;

	if (dv_addr_parse(text, &a) < 0)
		return -1;
	for (size_t i = 0; i < st->n; i++)
		if (dv_addr_eq(&st->addr[i], &a))
			return (ssize_t)i;
	return -1;
}

static void run_stop_child(struct run *st)
{
	if (st->child > 0 && !st->signalled) {
		kill(st->child, st->sig);
		st->signalled = true;
	}
}

static void run_event(dvipa_t *h, const struct dvipa_event *ev, void *userdata)
{
	struct run *st = userdata;
	ssize_t i = run_find(st, ev->addr);

	if (i < 0)
		return;
	if (ev->type == DVIPA_EVENT_GRANTED) {
		st->granted[i] = true;
	} else if (ev->type == DVIPA_EVENT_LOST) {
		fprintf(stderr, "dvipactl: lost %s: %s\n", st->text[i], *ev->reason ? ev->reason : "no reason given");
		if (st->child > 0)
			run_stop_child(st);
		else
			st->lost = st->text[i];
	}
}

static bool all_granted(const struct run *st)
{
	for (size_t i = 0; i < st->n; i++)
		if (!st->granted[i])
			return false;
	return true;
}

/* Wait for every standby to be granted; signals end the wait. */
static int run_wait_granted(dvipa_t *h, struct run *st, int sfd)
{
	while (!all_granted(st)) {
		struct pollfd p[2] = {{.fd = dvipa_fd(h), .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		struct signalfd_siginfo si;
		int r;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "dvipactl: poll: %s\n", strerror(errno));
			return EXIT_FAILURE_OTHER;
		}
		if (p[1].revents && read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
			return 128 + (int)si.ssi_signo;
		if (p[0].revents) {
			r = dvipa_dispatch(h, run_event, st);
			if (r == -DVIPA_E_UNREACH) {
				fprintf(stderr, "dvipactl: dvipad went away\n");
				return EXIT_UNREACH;
			}
			if (st->lost)
				return EXIT_FAILURE_OTHER;
		}
	}
	return 0;
}

static int child_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_FAILURE_OTHER;
}

static int run_supervise(dvipa_t *h, struct run *st, int sfd, int pidfd)
{
	int dfd = dvipa_fd(h);

	for (;;) {
		struct pollfd p[3] = {
			{.fd = sfd, .events = POLLIN},
			{.fd = pidfd, .events = POLLIN},
			{.fd = dfd, .events = POLLIN},
		};
		struct signalfd_siginfo si;
		int status;
		pid_t w;

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			/* Cannot supervise any more: stop the command and
			 * wait for it the simple way. */
			fprintf(stderr, "dvipactl: poll: %s\n", strerror(errno));
			run_stop_child(st);
			while (waitpid(st->child, &status, 0) < 0)
				if (errno != EINTR)
					return EXIT_FAILURE_OTHER;
			return child_status(status);
		}
		if (p[0].revents && read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
			kill(st->child, (int)si.ssi_signo);
		if (p[2].revents) {
			if (dvipa_dispatch(h, run_event, st) == -DVIPA_E_UNREACH) {
				fprintf(stderr, "dvipactl: dvipad went away%s\n",
					st->signalled ? "" : ", stopping the command");
				run_stop_child(st);
				dfd = -1; /* a dead connection polls readable forever */
			}
		}
		/* Whatever woke us (pidfd, SIGCHLD, or neither), ask. */
		w = waitpid(st->child, &status, WNOHANG);
		if (w == st->child)
			return child_status(status);
		if (w < 0 && errno != EINTR) {
			fprintf(stderr, "dvipactl: waitpid: %s\n", strerror(errno));
			return EXIT_FAILURE_OTHER;
		}
	}
}

static int run_add_vipa(struct run *st, const char *text)
{
	if (st->n == MAX_VIPAS)
		return usage_error("more than %d --vipa", MAX_VIPAS);
	if (dv_addr_parse(text, &st->addr[st->n]) < 0)
		return usage_error("'%s' is not an IPv4 or IPv6 address", text);
	for (size_t i = 0; i < st->n; i++)
		if (dv_addr_eq(&st->addr[i], &st->addr[st->n]))
			return usage_error("--vipa %s given twice", text);
	st->text[st->n++] = text;
	return 0;
}

/* --listen PAIR: one more pair of the command's listen set. */
static int run_add_listen(struct run *st, const char *text)
{
	struct dv_listen_pair p;
	const char *why;

	if (dv_listen_pair_parse(text, strlen(text), &p, &why) < 0 || dv_listen_set_add(&st->listen, &p, &why) < 0)
		return usage_error("--listen '%s': %s", text, why);
	return 0;
}

/*
 * The listen set's VIPA is held for the life of the command, as a --vipa
 * is (and as one already, if it is given as --vipa too).
 */
static int run_listen_vipa(struct run *st)
{
	const struct dv_addr *a = &st->listen.pair[0].addr;

	if (st->listen.n == 0)
		return 0;
	for (size_t i = 0; i < st->n; i++)
		if (dv_addr_eq(&st->addr[i], a))
			return 0;
	if (st->n == MAX_VIPAS)
		return usage_error("more than %d --vipa", MAX_VIPAS);
	dv_addr_fmt(a, st->listen_vipa);
	st->addr[st->n] = *a;
	st->text[st->n++] = st->listen_vipa;
	return 0;
}

/* Returns 0 with the command's first word at argv[optind], or the exit status. */
static int run_options(int argc, char **argv, struct run *st, bool *standby)
{
	/* One option per line, not a grid. */
	/* clang-format off */
	static const struct option opts[] = {
		{"standby", no_argument, NULL, 's'},
		{"rank", required_argument, NULL, 'r'},
		{"signal", required_argument, NULL, 'g'},
		{"vipa", required_argument, NULL, 'v'},
		{"source", required_argument, NULL, 'o'},
		{"listen", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	/* clang-format on */
	struct dv_addr src;
	bool has_rank = false;
	int o, r;

	/* '+': the command's own options are not ours */
	optind = 0;
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		char *end;
		long v;

		switch (o) {
		case 's':
			*standby = true;
			break;
		case 'r':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || v < 1 || v > 254)
				return usage_error("rank '%s' is not in 1..254", optarg);
			st->rank = (unsigned)v;
			has_rank = true;
			break;
		case 'g':
			st->sig = parse_signal(optarg);
			if (st->sig < 0)
				return usage_error("'%s' is not a signal", optarg);
			break;
		case 'v':
			r = run_add_vipa(st, optarg);
			if (r != 0)
				return r;
			break;
		case 'o':
			if (st->source)
				return usage_error("--source is given twice");
			if (dv_addr_parse(optarg, &src) < 0)
				return usage_error("'%s' is not a numeric IPv4 or IPv6 address", optarg);
			st->source = optarg;
			break;
		case 'l':
			r = run_add_listen(st, optarg);
			if (r != 0)
				return r;
			break;
		case 'h':
			usage_line(stdout, current_verb);
			exit(0);
		default:
			return usage_error(NULL);
		}
	}
	if (has_rank && !*standby)
		return usage_error("--rank needs --standby");
	r = run_listen_vipa(st);
	if (r != 0)
		return r;
	if (st->n == 0 && !st->source)
		return usage_error("at least one --vipa, a --listen or a --source is required");
	if (st->n == 0 && *standby)
		return usage_error("--standby needs a --vipa");
	if (optind >= argc)
		return usage_error("no command given");
	return 0;
}

/*
 * From here on, these signals arrive through the returned descriptor only:
 * before the command runs they end the wait, afterwards they are forwarded.
 */
static int run_signalfd(sigset_t *ret_oldmask)
{
	sigset_t mask;
	int sfd = -1;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, ret_oldmask) < 0 || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0)
		fprintf(stderr, "dvipactl: signalfd: %s\n", strerror(errno));
	return sfd;
}

/* Ask for every --vipa; 0, or the exit status once the reason is printed. */
static int run_request(dvipa_t *h, struct run *st, bool standby)
{
	int r;

	for (size_t i = 0; i < st->n; i++) {
		r = standby ? dvipa_standby(h, st->text[i], st->rank) : dvipa_activate(h, st->text[i]);
		if (r < 0) {
			const char *why = dvipa_reason(h);

			fprintf(stderr, "dvipactl: %s %s: %s\n", standby ? "standby" : "activate", st->text[i],
				*why ? why : dvipa_strerror(r));
			return -r;
		}
		if (r == 0)
			st->granted[i] = true;
		else
			fprintf(stderr, "dvipactl: waiting for %s (standby rank %u)\n", st->text[i], st->rank);
	}
	return 0;
}

/*
 * --source, --listen: the command runs with the preload shim (ahead of any
 * other LD_PRELOAD), which binds its outbound sockets to the --source
 * address, with this node's ports of it where it is distributed with
 * SYSPLEXPORTS, and lets its sockets bind the pairs of the listen set
 * (DVIPA_LISTEN, the pairs as the shim reads them). The shim's path:
 * $DVIPA_PRELOAD_LIB, else where it was installed. 0, or -1 with the
 * reason said.
 */
static int run_shim_env(const struct ctl *c, const struct run *st)
{
	const char *lib = getenv("DVIPA_PRELOAD_LIB"), *pre = getenv("LD_PRELOAD");
	char buf[4096], set[DV_LISTEN_MAX * (DV_LISTEN_PAIR_STRLEN + 1)] = "";

	if (!st->source && st->listen.n == 0)
		return 0;
	if (!lib || !*lib)
		lib = DVIPA_PRELOAD_LIB;
	if (snprintf(buf, sizeof(buf), "%s%s%s", lib, pre && *pre ? " " : "", pre ? pre : "") >= (int)sizeof(buf)) {
		fprintf(stderr, "dvipactl: LD_PRELOAD is too long\n");
		return -1;
	}
	for (size_t i = 0; i < st->listen.n; i++) {
		char pb[DV_LISTEN_PAIR_STRLEN];

		if (i)
			strcat(set, ",");
		strcat(set, dv_listen_pair_fmt(&st->listen.pair[i], pb));
	}
	if (setenv("LD_PRELOAD", buf, 1) < 0 || (st->source && setenv("DVIPA_SOURCE", st->source, 1) < 0) ||
	    (st->listen.n && setenv("DVIPA_LISTEN", set, 1) < 0) ||
	    (c->sock_path && setenv("DVIPA_SOCKET", c->sock_path, 1) < 0)) {
		fprintf(stderr, "dvipactl: setenv: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* Start the command and watch it; returns its exit status or ours. */
static int run_command(dvipa_t *h, struct run *st, int sfd, char **cmd, const sigset_t *oldmask)
{
	int pidfd, r;

	st->child = fork();
	if (st->child < 0) {
		fprintf(stderr, "dvipactl: fork: %s\n", strerror(errno));
		return EXIT_FAILURE_OTHER;
	}
	if (st->child == 0) {
		/* Every descriptor of ours is close-on-exec; the mask is not. */
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		execvp(cmd[0], cmd);
		fprintf(stderr, "dvipactl: cannot run '%s': %s\n", cmd[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	/* Without pidfd_open (Linux < 5.3) SIGCHLD on sfd does the job. */
	pidfd = (int)syscall(SYS_pidfd_open, st->child, 0);
	r = run_supervise(h, st, sfd, pidfd);
	if (pidfd >= 0)
		close(pidfd);
	return r;
}

static int cmd_run(struct ctl *c, int argc, char **argv)
{
	static struct run st;
	sigset_t oldmask;
	bool standby = false;
	dvipa_t *h = NULL;
	int r, sfd;

	st.rank = DEFAULT_RANK;
	st.sig = SIGTERM;
	if (c->json)
		return usage_error("--json applies to display verbs only");
	r = run_options(argc, argv, &st, &standby);
	if (r != 0)
		return r;
	if (run_shim_env(c, &st) < 0)
		return EXIT_FAILURE_OTHER;
	/* Nothing to hold: the command is all there is. */
	if (st.n == 0) {
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "dvipactl: cannot run '%s': %s\n", argv[optind], strerror(errno));
		return errno == ENOENT ? 127 : 126;
	}
	sfd = run_signalfd(&oldmask);
	if (sfd < 0)
		return EXIT_FAILURE_OTHER;

	r = dvipa_open(&h, c->sock_path);
	if (r < 0) {
		say_unreachable(sock_path(c), errno);
		r = -r;
		goto out;
	}
	r = run_request(h, &st, standby);
	if (r == 0)
		r = run_wait_granted(h, &st, sfd);
	if (r == 0)
		r = run_command(h, &st, sfd, argv + optind, &oldmask);
out:
	/* Closing the handle ends the holds: the command is gone. */
	dvipa_close(h);
	close(sfd);
	return r;
}

/* ---- the verb table and main ---- */

static int cmd_help(struct ctl *c, int argc, char **argv);

static const struct verb verbs[] = {
	{"status", cmd_status, "[--json] [ADDR]", "show the node, its VIPAs, holds and standbys", true},
	{"config", cmd_config, "[--json]", "show the configuration in effect", true},
	{"targets", cmd_targets, "[--json] [ADDR]",
	 "show the targets of the distributed VIPAs (ADDR only): state, weight, slots of the table", true},
	{"conns", cmd_conns, "[--json] [ADDR]",
	 "show the connections the distributor has pinned (ADDR only): client, port, target, state", true},
	{"quiesce", cmd_quiesce, "ADDR [--node NODE] [--port PORT]",
	 "no new connections of the distributed VIPA ADDR (PORT only) to NODE (default: this node), on every "
	 "distributor and across NODE's restart; existing ones go on (root)",
	 false},
	{"resume", cmd_resume, "ADDR [--node NODE] [--port PORT]",
	 "new connections of ADDR (PORT only) come to NODE (default: this node) again after quiesce (root)", false},
	{"activate", cmd_activate, "ADDR", "activate ADDR as an operator hold", false},
	{"deactivate", cmd_deactivate, "ADDR [--node NODE]",
	 "end the operator hold on ADDR; for a VIPADEFINE/VIPABACKUP address, make NODE (default: this one) "
	 "ineligible for it (root)",
	 false},
	{"reactivate", cmd_reactivate, "ADDR [--node NODE]",
	 "make NODE (default: this one) eligible again for the define ADDR (root)", false},
	{"move", cmd_move, "ADDR --to NODE", "move the active VIPARANGE address ADDR to cluster member NODE (root)",
	 false},
	{"leave", cmd_leave, "[--node NODE]", "NODE (default: this one) gives up its VIPAs and takes none (root)",
	 false},
	{"join", cmd_join, "[--node NODE]", "NODE (default: this one) takes VIPAs again after leave (root)", false},
	{"reload", cmd_reload, "", "make dvipad re-read its configuration", false},
	{"metrics", cmd_metrics, "", "print dvipad's metrics as OpenMetrics text", false},
	{"monitor", cmd_monitor, "[--json]", "print each change (activation, release, takeover, ...) as it happens",
	 true},
	{"run", cmd_run,
	 "[--standby [--rank N]] [--signal SIG] [--source ADDR] [--vipa ADDR]... [--listen ADDR:PORT]... -- CMD "
	 "[ARG]...",
	 "hold the VIPAs while CMD runs; --listen: CMD listens on the VIPA and ANYADDR of a port (at most 8 pairs, the "
	 "VIPA first)",
	 false},
	{"help", cmd_help, "", "show this help", false},
};

static void usage_line(FILE *f, const struct verb *v)
{
	fprintf(f, "usage: dvipactl [-S PATH] %s%s%s\n", v->name, *v->args ? " " : "", v->args);
}

static void help(FILE *f)
{
	fprintf(f, "usage: dvipactl [-S PATH] [--json] VERB [ARG]...\n"
		   "       dvipactl -h|--help | --version\n\n"
		   "  -S PATH   dvipad's control socket (default $DVIPA_SOCKET, then " DV_DEFAULT_SOCKET ")\n"
		   "  --json    JSON output of display verbs\n\nverbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %s%s%s\n      %s\n", verbs[i].name, *verbs[i].args ? " " : "", verbs[i].args,
			verbs[i].help);
	fprintf(f, "\nexit: 0 ok, 1 failure, 2 bad arguments, 3 not in any range, 4 held elsewhere,\n"
		   "      5 permission denied, 6 dvipad unreachable, 7 address in use on the link,\n"
		   "      8 not held, 9 limit, 10 no quorum, 11 kernel refused, 12 internal error,\n"
		   "      13 the node left the group;\n"
		   "      run: the command's exit status, 128+N if it was killed by signal N\n");
}

static int cmd_help(struct ctl *c, int argc, char **argv)
{
	help(stdout);
	return 0;
}

/* A message (if any), the usage line of the verb, and EXIT_USAGE. */
static int usage_error(const char *fmt, ...)
{
	if (fmt) {
		va_list ap;

		fprintf(stderr, "dvipactl: ");
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fprintf(stderr, "\n");
	}
	if (current_verb)
		usage_line(stderr, current_verb);
	else
		fprintf(stderr, "usage: dvipactl [-S PATH] [--json] VERB [ARG]...  (dvipactl --help)\n");
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"socket", required_argument, NULL, 'S'},
		{0},
	};
	struct ctl c = {.fd = -1};
	int o, r;

	/* '+': stop at the verb; its options are parsed by the verb */
	while ((o = getopt_long(argc, argv, "+hS:", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			c.json = true;
			break;
		case 'h':
			help(stdout);
			return 0;
		case 'V':
			printf("dvipactl %s (protocol %d)\n", DVIPA_VERSION, DV_PROTO_VERSION);
			return 0;
		case 'S':
			c.sock_path = optarg;
			break;
		default:
			return usage_error(NULL);
		}
	}
	if (optind >= argc)
		return usage_error("no verb given");

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[optind], verbs[i].name) == 0)
			current_verb = &verbs[i];
	if (!current_verb)
		return usage_error("unknown verb '%s'", argv[optind]);

	r = current_verb->fn(&c, argc - optind, argv + optind);
	if (c.fd >= 0)
		close(c.fd);
	return r;
}
