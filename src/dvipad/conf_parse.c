/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dvipa.conf parser; the language is described in dvipa.conf(5).
 *
 * Hand-written rather than a yacc grammar: the language has one statement per
 * line (with z/OS-style continuation lines) and z/OS-style abbreviated
 * keywords, which a tokenizer and a keyword matcher express directly, and
 * error recovery is simply "go on with the next statement". Every error is
 * reported; the parse fails if there was any.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_LEN 4096
/* One statement with its continuation lines; each line stored takes its
 * length plus a NUL, and each token at least two bytes of that. */
#define STMT_MAX_LEN (4 * LINE_MAX_LEN)
#define MAX_TOKENS (STMT_MAX_LEN / 2 + 1)
#define FILE_MAX_SIZE (16u << 20)
/* A file that is not a configuration (a binary, a log pasted by mistake)
 * would otherwise give an error per line: millions of lines to log at a
 * reload, and the daemon busy with them. */
#define MAX_ERRORS 100
#define NAME_LIST_MAX 4096 /* bytes of one USER or GROUP list */

/* One address of a VIPADEFINE, VIPABACKUP or VIPADELETE statement. */
struct addr_item {
	struct dv_addr addr;
	uint8_t plen;
	const char *tok; /* as written, for messages */
	unsigned line;	 /* where tok is */
};

/* An ALLOW clause while it is being parsed. */
struct allow {
	size_t n_users, n_groups;
	char **users;
	uid_t *uids;
	char **groups;
	gid_t *gids;
};

struct parser {
	struct dv_conf *c;
	const char *file;
	FILE *errf;
	unsigned nerrors;
	unsigned line; /* the statement's first line */

	/* The statement being read: its lines' text, split into tokens, and
	 * the line of each token, which errors about it name. */
	bool open;   /* a statement has begun, continuation lines join it */
	bool broken; /* one of its lines had an error: it is dropped */
	char buf[STMT_MAX_LEN];
	size_t buf_len;
	char *tok[MAX_TOKENS];
	unsigned tok_line[MAX_TOKENS];
	size_t ntok, pos;

	bool in_block;
	unsigned block_line; /* of the open VIPADYNAMIC */
	unsigned first_block_line;
	bool vipa_seen; /* a VIPA statement inside a block */

	/* Line of the first statement of each kind that may appear once. */
	unsigned node_line, interface_line, cluster_line, announce_line, probe_line, lease_line, user_vipas_line,
		metrics_line, nice_line;

	size_t ranges_cap, defines_cap, distribute_cap;
	bool ranges_full, defines_full, distribute_full;

	struct addr_item items[MAX_TOKENS];
};

__attribute__((format(printf, 3, 0))) static void verr_at(struct parser *p, unsigned line, const char *fmt, va_list ap)
{
	p->nerrors++;
	if (!p->errf)
		return;
	fprintf(p->errf, "%s:%u: ", p->file, line);
	vfprintf(p->errf, fmt, ap);
	fputc('\n', p->errf);
}

__attribute__((format(printf, 3, 4))) static int err_at(struct parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_at(p, line, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The line of token i, or of the statement when there is no such token. */
static unsigned tok_line(const struct parser *p, size_t i)
{
	return i < p->ntok ? p->tok_line[i] : p->line;
}

/*
 * Report an error on the line of the last token taken, which is the one the
 * parsers' messages are about (or the keyword that wants what is missing);
 * returns -EINVAL for "return perr()".
 */
__attribute__((format(printf, 2, 3))) static int perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_at(p, tok_line(p, p->pos ? p->pos - 1 : 0), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * z/OS abbreviation rule: a word is the keyword when it is a prefix of the
 * full keyword at least min characters long (the keyword's capital letters in
 * IBM's spelling). min 0 means the keyword must be written in full.
 */
static bool kw_match(const char *word, const char *name, size_t min)
{
	size_t n = strlen(word), full = strlen(name);

	if (min == 0)
		min = full;
	if (n < min || n > full)
		return false;
	return strncasecmp(word, name, n) == 0;
}

static const char *peek(struct parser *p)
{
	return p->pos < p->ntok ? p->tok[p->pos] : NULL;
}

static const char *take(struct parser *p)
{
	return p->pos < p->ntok ? p->tok[p->pos++] : NULL;
}

static bool take_kw(struct parser *p, const char *name, size_t min)
{
	const char *t = peek(p);

	if (!t || !kw_match(t, name, min))
		return false;
	p->pos++;
	return true;
}

/* Whether token i begins a continuation line. */
static bool starts_continuation(const struct parser *p, size_t i)
{
	return i > 0 && i < p->ntok && p->tok_line[i] != p->tok_line[i - 1];
}

static int expect_end(struct parser *p)
{
	size_t i = p->pos;

	if (i >= p->ntok)
		return 0;
	/* Most likely a misspelt statement keyword on an indented line. */
	if (starts_continuation(p, i))
		return err_at(p, p->tok_line[i],
			      "unexpected \"%s\" (an indented line continues the statement of line %u)", p->tok[i],
			      p->line);
	return err_at(p, p->tok_line[i], "unexpected \"%s\"", p->tok[i]);
}

static bool is_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int parse_num(struct parser *p, const char *what, const char *tok, unsigned long min, unsigned long max,
		     unsigned *ret)
{
	unsigned long v;

	if (!tok)
		return perr(p, "%s needs a value", what);
	if (!is_digits(tok))
		return perr(p, "%s \"%s\" is not a number", what, tok);
	errno = 0;
	v = strtoul(tok, NULL, 10);
	if (errno || v < min || v > max)
		return perr(p, "%s \"%s\" is out of range %lu..%lu", what, tok, min, max);
	*ret = (unsigned)v;
	return 0;
}

/* Node and CPG group names: they travel in cluster messages and status
 * output, so keep them to host-name characters. */
static bool valid_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
	       ch == '-' || ch == '_';
}

static int check_name(struct parser *p, const char *what, const char *name, size_t max)
{
	if (strlen(name) > max)
		return perr(p, "%s \"%s\" is too long (at most %zu characters)", what, name, max);
	for (const char *s = name; *s; s++)
		if (!valid_name_char(*s))
			return perr(p, "invalid %s \"%s\" (letters, digits, '.', '-' and '_' only)", what, name);
	return 0;
}

static bool once(struct parser *p, unsigned *seen_line, const char *stmt)
{
	if (*seen_line) {
		err_at(p, p->line, "duplicate %s statement (first at line %u)", stmt, *seen_line);
		return false;
	}
	*seen_line = p->line;
	return true;
}

/* ---- addresses ---------------------------------------------------------- */

static bool is_ipv4_text(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

static void mask_addr(struct dv_addr *a, unsigned len)
{
	for (unsigned i = 0; i < dv_addr_size(a); i++) {
		unsigned bit = i * 8;

		if (bit >= len)
			a->bytes[i] = 0;
		else if (bit + 8 > len)
			a->bytes[i] &= (uint8_t)(0xff << (8 - (len - bit)));
	}
}

/* "addr/len", host bits allowed. Reports its own errors. */
static int parse_addr_len(struct parser *p, const char *tok, struct dv_addr *ret_addr, uint8_t *ret_len)
{
	char a[DV_ADDR_STRLEN];
	const char *slash = strchr(tok, '/');
	size_t n = (size_t)(slash - tok);
	unsigned long len;

	if (n == 0 || n >= sizeof(a))
		return perr(p, "invalid address \"%s\"", tok);
	memcpy(a, tok, n);
	a[n] = 0;
	if (dv_addr_parse(a, ret_addr) < 0)
		return perr(p, "invalid address \"%s\"", tok);
	if (!is_digits(slash + 1) || strlen(slash + 1) > 3)
		return perr(p, "invalid prefix length in \"%s\"", tok);
	len = strtoul(slash + 1, NULL, 10);
	/* dv_addr_parse returns v4-mapped addresses as IPv4: the length was
	 * written in IPv6 terms. */
	if (ret_addr->family == AF_INET && strchr(a, ':')) {
		if (len < 96 || len > 128)
			return perr(p, "invalid prefix length in \"%s\"", tok);
		len -= 96;
	}
	if (len > dv_addr_maxlen(ret_addr))
		return perr(p, "invalid prefix length in \"%s\"", tok);
	*ret_len = (uint8_t)len;
	return 0;
}

/* VIPARANGE's range: "mask addr" or "addr/len", no host bits. */
static int parse_range(struct parser *p, struct dv_prefix *ret)
{
	const char *t = take(p), *n;
	char want[DV_ADDR_STRLEN];
	struct dv_addr a;
	uint8_t len;

	if (!t)
		return perr(p, "VIPARANGE needs a range");
	if (strchr(t, '/')) {
		if (parse_addr_len(p, t, &a, &len) < 0)
			return -EINVAL;
		if (dv_prefix_make(&a, len, ret) < 0) {
			struct dv_prefix fix = {.addr = a, .len = len};

			mask_addr(&fix.addr, len);
			return perr(p, "range \"%s\" has host bits set (%s?)", t, dv_prefix_fmt(&fix, want));
		}
		return 0;
	}
	if (dv_addr_parse(t, &a) < 0)
		return perr(p, "invalid address \"%s\"", t);
	n = peek(p);
	if (!is_ipv4_text(t) || !n || strchr(n, '/') || dv_addr_parse(n, &a) < 0)
		return perr(p, "range \"%s\" needs a mask (address_mask address or address/length)", t);
	p->pos++;
	if (dv_mask_parse(t, &len) < 0)
		return err_at(p, tok_line(p, p->pos - 2), "non-contiguous mask \"%s\"", t);
	if (a.family != AF_INET)
		return perr(p, "mask \"%s\" does not apply to IPv6 address \"%s\"", t, n);
	if (dv_prefix_make(&a, len, ret) < 0) {
		struct dv_prefix fix = {.addr = a, .len = len};

		mask_addr(&fix.addr, len);
		return perr(p, "range \"%s %s\" has host bits set (%s?)", t, n, dv_prefix_fmt(&fix, want));
	}
	return 0;
}

/* A range that would let VIPAs come from a block no VIPA may be in. */
static int check_range_usable(struct parser *p, const struct dv_prefix *pfx, unsigned line)
{
	const struct dv_addr_block *b = dv_prefix_unusable(pfx);
	char pb[DV_ADDR_STRLEN], bb[DV_ADDR_STRLEN];

	if (!b)
		return 0;
	dv_prefix_fmt(pfx, pb);
	dv_prefix_fmt(&b->prefix, bb);
	if (b->prefix.len == pfx->len)
		return err_at(p, line, "range %s cannot hold VIPAs (%s)", pb, b->what);
	if (b->prefix.len < pfx->len)
		return err_at(p, line, "range %s is in %s, which cannot hold VIPAs (%s)", pb, bb, b->what);
	return err_at(p, line, "range %s overlaps %s, which cannot hold VIPAs (%s)", pb, bb, b->what);
}

/* A dotted IPv4 word before more addresses is taken as a mask when it is one
 * (or is meant to be one and is broken): otherwise it is an address. */
static bool looks_like_mask(const char *t)
{
	uint8_t len;

	if (strchr(t, '/') || !is_ipv4_text(t))
		return false;
	return dv_mask_parse(t, &len) == 0 || strncmp(t, "255.", 4) == 0;
}

/*
 * The address list of VIPADEFINE, VIPABACKUP and VIPADELETE:
 * [address_mask] addr... where each addr may also be addr/len (without a
 * mask) and a plain one gets the mask's length, or /32 or /128. Stores them
 * in p->items; reports every bad address.
 */
static int parse_addr_list(struct parser *p, const char *stmt, bool until_trackport, size_t *ret_n)
{
	const char *t = peek(p), *mask = NULL;
	uint8_t mask_len = 0;
	int r = 0;
	size_t n = 0;

	if (t && p->pos + 1 < p->ntok && looks_like_mask(t) &&
	    !(until_trackport && kw_match(p->tok[p->pos + 1], "TRACKPORT", 0))) {
		p->pos++;
		mask = t;
		if (dv_mask_parse(t, &mask_len) < 0)
			r = perr(p, "non-contiguous mask \"%s\"", t);
	}
	while ((t = peek(p)) && !(until_trackport && kw_match(t, "TRACKPORT", 0))) {
		struct addr_item *it = &p->items[n];
		const struct dv_addr_block *bad;

		p->pos++;
		it->tok = t;
		if (strchr(t, '/')) {
			if (mask) {
				r = perr(p, "\"%s\" has both a mask and a prefix length", t);
				continue;
			}
			if (parse_addr_len(p, t, &it->addr, &it->plen) < 0) {
				r = -EINVAL;
				continue;
			}
		} else {
			if (dv_addr_parse(t, &it->addr) < 0) {
				r = perr(p, "invalid address \"%s\"", t);
				continue;
			}
			if (mask && it->addr.family != AF_INET) {
				r = perr(p, "mask \"%s\" does not apply to IPv6 address \"%s\"", mask, t);
				continue;
			}
			it->plen = mask ? mask_len : (uint8_t)dv_addr_maxlen(&it->addr);
		}
		bad = dv_addr_unusable(&it->addr);
		if (bad) {
			r = perr(p, "\"%s\" cannot be a VIPA (%s)", t, bad->what);
			continue;
		}
		it->line = tok_line(p, p->pos - 1);
		n++;
	}
	if (r < 0)
		return r;
	if (n == 0)
		return perr(p, "%s needs an address", stmt);
	*ret_n = n;
	return 0;
}

/* ---- ALLOW --------------------------------------------------------------- */

static void allow_done(struct allow *a)
{
	for (size_t i = 0; i < a->n_users; i++)
		free(a->users[i]);
	for (size_t i = 0; i < a->n_groups; i++)
		free(a->groups[i]);
	free(a->users);
	free(a->uids);
	free(a->groups);
	free(a->gids);
	*a = (struct allow){0};
}

/* getpwnam_r and getgrnam_r report "no such entry" in several ways. */
static bool is_not_found(int r)
{
	return r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM;
}

static long lookup_bufsize(int name)
{
	long sz = sysconf(name);

	return sz > 0 && sz < (1 << 20) ? sz : 1024;
}

/* 0 found, -ENOENT no such user (group), other -errno. */
static int lookup_id(bool group, const char *name, uint32_t *ret)
{
	for (long sz = lookup_bufsize(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);; sz *= 2) {
		_cleanup_free_ char *buf = malloc((size_t)sz);
		struct passwd pw, *pwr = NULL;
		struct group gr, *grr = NULL;
		int r;

		if (!buf)
			return -ENOMEM;
		r = group ? getgrnam_r(name, &gr, buf, (size_t)sz, &grr) : getpwnam_r(name, &pw, buf, (size_t)sz, &pwr);
		if (r == ERANGE && sz < (1 << 24))
			continue;
		if (pwr || grr) {
			*ret = grr ? grr->gr_gid : pwr->pw_uid;
			return 0;
		}
		return is_not_found(r) ? -ENOENT : -r;
	}
}

/* Resolve one USER or GROUP name, written on line; numeric ids are taken as
 * they are. */
static int resolve(struct parser *p, unsigned line, bool group, const char *name, uint32_t *ret)
{
	const char *what = group ? "group" : "user";
	int r;

	if (is_digits(name)) {
		unsigned long v;

		errno = 0;
		v = strtoul(name, NULL, 10);
		/* (uid_t)-1 means "no id" to the kernel. */
		if (errno || v >= UINT32_MAX)
			return err_at(p, line, "%s id \"%s\" is out of range", what, name);
		*ret = (uint32_t)v;
		return 0;
	}
	r = lookup_id(group, name, ret);
	if (r == -ENOMEM)
		return r;
	if (r == -ENOENT)
		return err_at(p, line, "unknown %s \"%s\"", what, name);
	if (r < 0)
		return err_at(p, line, "cannot look up %s \"%s\": %s", what, name, strerror(-r));
	return 0;
}

static int allow_add(struct allow *a, bool group, const char *name, uint32_t id)
{
	size_t n = group ? a->n_groups : a->n_users;
	char ***names = group ? &a->groups : &a->users;
	char **nn;
	char *dup;

	/* A name given twice (in ALLOW and by SAF) is listed once. */
	for (size_t i = 0; i < n; i++)
		if (strcmp((*names)[i], name) == 0)
			return 0;
	nn = realloc(*names, (n + 1) * sizeof(*nn));
	if (!nn)
		return -ENOMEM;
	*names = nn;
	if (group) {
		gid_t *ids = realloc(a->gids, (n + 1) * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		a->gids = ids;
		ids[n] = id;
	} else {
		uid_t *ids = realloc(a->uids, (n + 1) * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		a->uids = ids;
		ids[n] = id;
	}
	dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	nn[n] = dup;
	if (group)
		a->n_groups++;
	else
		a->n_users++;
	return 0;
}

/* The line of the name at offset off of a list joined from the tokens from
 * first on: a list may go on on the next line. */
static unsigned list_line(const struct parser *p, size_t first, size_t off)
{
	size_t end = 0;

	for (size_t i = first; i < p->ntok; i++) {
		end += strlen(p->tok[i]);
		if (off < end)
			return p->tok_line[i];
	}
	return tok_line(p, first);
}

/*
 * USER a,b,c or GROUP a,b: one comma-separated list, which may also be
 * written with blanks around the commas ("a, b"). Every unknown name is
 * reported.
 */
static int parse_name_list(struct parser *p, bool group, struct allow *a)
{
	const char *kw = group ? "GROUP" : "USER";
	char list[NAME_LIST_MAX + 1];
	size_t len = 0, first = p->pos;
	const char *t = peek(p);
	char *save = NULL, *s;
	int r = 0;

	if (!t || kw_match(t, "USER", 0) || kw_match(t, "GROUP", 0))
		return perr(p, "%s needs a list of names", kw);
	list[0] = 0;
	while ((t = peek(p)) && (len == 0 || list[len - 1] == ',' || t[0] == ',') && !kw_match(t, "USER", 0) &&
	       !kw_match(t, "GROUP", 0)) {
		size_t n = strlen(t);

		if (len + n > NAME_LIST_MAX)
			return err_at(p, tok_line(p, p->pos), "%s list is too long", kw);
		memcpy(list + len, t, n + 1);
		len += n;
		p->pos++;
	}
	if (list[0] == ',' || list[len - 1] == ',' || strstr(list, ",,"))
		r = perr(p, "empty name in %s list", kw);
	for (s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		unsigned line = list_line(p, first, (size_t)(s - list));
		uint32_t id;
		int k;

		if (a->n_users + a->n_groups >= DV_CONF_MAX_ALLOW)
			return err_at(p, line, "too many names in ALLOW (at most %d)", DV_CONF_MAX_ALLOW);
		k = resolve(p, line, group, s, &id);
		if (k == -ENOMEM)
			return k;
		if (k < 0) {
			r = k;
			continue;
		}
		k = allow_add(a, group, s, id);
		if (k < 0)
			return k;
	}
	return r;
}

static int parse_allow(struct parser *p, struct allow *a)
{
	bool users = false, groups = false;
	int r = 0;

	for (;;) {
		const char *t = peek(p);
		bool group;
		int k;

		if (t && kw_match(t, "USER", 0))
			group = false;
		else if (t && kw_match(t, "GROUP", 0))
			group = true;
		else
			break;
		p->pos++;
		if (group ? groups : users)
			return perr(p, "duplicate %s in ALLOW", group ? "GROUP" : "USER");
		*(group ? &groups : &users) = true;
		k = parse_name_list(p, group, a);
		if (k == -ENOMEM)
			return k;
		if (k < 0)
			r = k;
	}
	if (!users && !groups)
		return perr(p, "ALLOW needs USER or GROUP");
	return r;
}

/*
 * SAF resname. On z/OS it names the SERVAUTH profile
 * EZB.BINDDVIPARANGE.sysname.tcpname.resname, whose access list says who may
 * create VIPAs in the range; the Linux counterpart of such a list is a group,
 * so it admits the members of the Unix group resname, as ALLOW GROUP would.
 * z/OS resource names are upper case and Unix group names rarely are: a name
 * no group has is also tried in lower case.
 */
static int parse_saf(struct parser *p, struct allow *a)
{
	_cleanup_free_ char *lower = NULL;
	const char *t = take(p), *name;
	unsigned line = tok_line(p, p->pos - 1);
	uint32_t gid = 0;
	int r;

	if (!t)
		return perr(p, "SAF needs a resource name (the Unix group it admits)");
	if (a->n_users + a->n_groups >= DV_CONF_MAX_ALLOW)
		return perr(p, "too many names in ALLOW (at most %d)", DV_CONF_MAX_ALLOW);
	if (is_digits(t)) {
		uint32_t id;

		if (resolve(p, line, true, t, &id) < 0)
			return -EINVAL;
		return allow_add(a, true, t, id);
	}
	name = t;
	r = lookup_id(true, name, &gid);
	if (r == -ENOENT) {
		lower = strdup(t);
		if (!lower)
			return -ENOMEM;
		for (char *c = lower; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		if (strcmp(lower, t) != 0) {
			name = lower;
			r = lookup_id(true, name, &gid);
		}
	}
	if (r == -ENOMEM)
		return r;
	if (r == -ENOENT && name == lower)
		return perr(p, "SAF \"%s\": no Unix group \"%s\" or \"%s\"", t, t, lower);
	if (r == -ENOENT)
		return perr(p, "SAF \"%s\": no Unix group \"%s\"", t, t);
	if (r < 0)
		return perr(p, "SAF \"%s\": cannot look up group \"%s\": %s", t, name, strerror(-r));
	return allow_add(a, true, name, gid);
}

/* ---- statements outside VIPADYNAMIC ---------------------------------------- */

static int st_node(struct parser *p)
{
	const char *t = take(p);

	if (!once(p, &p->node_line, "NODE"))
		return -EINVAL;
	if (!t)
		return perr(p, "NODE needs a name");
	if (check_name(p, "node name", t, DV_NODE_NAME_MAX - 1) < 0)
		return -EINVAL;
	strcpy(p->c->node, t);
	return expect_end(p);
}

static int st_interface(struct parser *p)
{
	const char *t = take(p);

	if (!once(p, &p->interface_line, "INTERFACE"))
		return -EINVAL;
	if (!t)
		return perr(p, "INTERFACE needs a name");
	/* What the kernel's dev_valid_name() accepts. */
	if (strlen(t) >= IF_NAMESIZE)
		return perr(p, "interface name \"%s\" is too long (at most %d characters)", t, IF_NAMESIZE - 1);
	if (strchr(t, '/') || strchr(t, ':') || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
		return perr(p, "invalid interface name \"%s\"", t);
	strcpy(p->c->interface, t);
	return expect_end(p);
}

static int st_cluster(struct parser *p)
{
	const char *t = take(p);

	if (!once(p, &p->cluster_line, "CLUSTER"))
		return -EINVAL;
	if (!t)
		return perr(p, "CLUSTER needs NONE or COROSYNC");
	if (kw_match(t, "NONE", 0)) {
		p->c->cluster = DV_CLUSTER_NONE;
		if (peek(p) && kw_match(peek(p), "GROUP", 0))
			return err_at(p, tok_line(p, p->pos), "GROUP needs CLUSTER COROSYNC");
	} else if (kw_match(t, "COROSYNC", 0)) {
		p->c->cluster = DV_CLUSTER_COROSYNC;
		if (take_kw(p, "GROUP", 0)) {
			t = take(p);
			if (!t)
				return perr(p, "GROUP needs a name");
			if (check_name(p, "group name", t, DV_GROUP_NAME_MAX - 1) < 0)
				return -EINVAL;
			strcpy(p->c->group, t);
		}
	} else {
		return perr(p, "CLUSTER must be NONE or COROSYNC, not \"%s\"", t);
	}
	return expect_end(p);
}

/* ANNOUNCE and PROBE: [COUNT n] [INTERVAL ms], in any order. */
static int count_interval(struct parser *p, const char *stmt, unsigned cmin, unsigned cmax, unsigned imax,
			  unsigned *count, unsigned *interval)
{
	bool have_count = false, have_interval = false;
	char what[32];
	int r = 0;

	while (peek(p)) {
		const char *t = take(p);
		bool is_count = kw_match(t, "COUNT", 0);

		if (!is_count && !kw_match(t, "INTERVAL", 0))
			return perr(p, "unexpected \"%s\"", t);
		snprintf(what, sizeof(what), "%s %s", stmt, is_count ? "COUNT" : "INTERVAL");
		if (is_count ? have_count : have_interval)
			return perr(p, "duplicate %s", what);
		*(is_count ? &have_count : &have_interval) = true;
		if (is_count ? parse_num(p, what, take(p), cmin, cmax, count)
			     : parse_num(p, what, take(p), 10, imax, interval))
			r = -EINVAL;
	}
	return r;
}

static int st_announce(struct parser *p)
{
	if (!once(p, &p->announce_line, "ANNOUNCE"))
		return -EINVAL;
	return count_interval(p, "ANNOUNCE", 1, 100, 60000, &p->c->announce_count, &p->c->announce_interval_ms);
}

static int st_probe(struct parser *p)
{
	if (!once(p, &p->probe_line, "PROBE"))
		return -EINVAL;
	return count_interval(p, "PROBE", 0, 10, 10000, &p->c->probe_count, &p->c->probe_interval_ms);
}

static int st_lease(struct parser *p)
{
	if (!once(p, &p->lease_line, "LEASE"))
		return -EINVAL;
	if (parse_num(p, "LEASE", take(p), 6, 86400, &p->c->lease_s) < 0)
		return -EINVAL;
	return expect_end(p);
}

/* METRICS LISTEN addr:port, an IPv6 address in brackets: [::1]:9101. */
static int st_metrics(struct parser *p)
{
	const char *t, *colon;
	char host[DV_ADDR_STRLEN];
	unsigned port;
	size_t n;

	if (!once(p, &p->metrics_line, "METRICS"))
		return -EINVAL;
#ifndef DVIPA_METRICS_HTTP
	return perr(p, "METRICS: this dvipad was built without the metrics endpoint (libmicrohttpd); "
		       "use dvipactl metrics");
#endif
	if (!take_kw(p, "LISTEN", 0))
		return perr(p, "METRICS needs LISTEN address:port");
	t = take(p);
	if (!t)
		return perr(p, "METRICS LISTEN needs address:port");
	colon = strrchr(t, ':');
	if (!colon)
		return perr(p, "METRICS LISTEN \"%s\" has no port (address:port, [IPv6]:port)", t);
	n = (size_t)(colon - t);
	if (n >= 2 && t[0] == '[' && t[n - 1] == ']') {
		t++;
		n -= 2;
	} else if (memchr(t, ':', n)) {
		return perr(p, "METRICS LISTEN \"%s\": write an IPv6 address in brackets, [addr]:port", t);
	}
	if (n >= sizeof(host) || (memcpy(host, t, n), host[n] = 0, dv_addr_parse(host, &p->c->metrics_addr) < 0))
		return perr(p, "METRICS LISTEN \"%.*s\" is not an IPv4 or IPv6 address", (int)n, t);
	if (parse_num(p, "METRICS LISTEN port", colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	p->c->metrics_port = (uint16_t)port;
	return expect_end(p);
}

static int st_maxuservipas(struct parser *p)
{
	if (!once(p, &p->user_vipas_line, "MAXUSERVIPAS"))
		return -EINVAL;
	if (parse_num(p, "MAXUSERVIPAS", take(p), 1, 65536, &p->c->user_vipas) < 0)
		return -EINVAL;
	return expect_end(p);
}

static int st_nice(struct parser *p)
{
	const char *t = take(p);
	long v;

	if (!once(p, &p->nice_line, "NICE"))
		return -EINVAL;
	if (!t)
		return perr(p, "NICE needs a value");
	if (!is_digits(t[0] == '-' ? t + 1 : t))
		return perr(p, "NICE \"%s\" is not a number", t);
	errno = 0;
	v = strtol(t, NULL, 10);
	if (errno || v < -20 || v > 19)
		return perr(p, "NICE \"%s\" is out of range -20..19", t);
	p->c->nice = (int)v;
	return expect_end(p);
}

static int st_vipadynamic(struct parser *p)
{
	if (p->in_block)
		return perr(p, "nested VIPADYNAMIC (block opened at line %u)", p->block_line);
	p->in_block = true;
	p->block_line = p->line;
	if (!p->first_block_line)
		p->first_block_line = p->line;
	return expect_end(p);
}

static int st_endvipadynamic(struct parser *p)
{
	if (!p->in_block)
		return perr(p, "ENDVIPADYNAMIC without VIPADYNAMIC");
	p->in_block = false;
	return expect_end(p);
}

/* ---- statements inside VIPADYNAMIC ----------------------------------------- */

static struct dv_conf_range *range_lookup(struct dv_conf *c, const struct dv_prefix *pfx)
{
	for (size_t i = 0; i < c->n_ranges; i++)
		if (c->ranges[i].prefix.len == pfx->len && dv_addr_eq(&c->ranges[i].prefix.addr, &pfx->addr))
			return &c->ranges[i];
	return NULL;
}

static void range_take_allow(struct dv_conf_range *r, struct allow *a)
{
	r->n_users = a->n_users;
	r->users = a->users;
	r->uids = a->uids;
	r->n_groups = a->n_groups;
	r->groups = a->groups;
	r->gids = a->gids;
	*a = (struct allow){0};
}

static void range_drop_allow(struct dv_conf_range *r)
{
	struct allow a = {
		.n_users = r->n_users,
		.users = r->users,
		.uids = r->uids,
		.n_groups = r->n_groups,
		.groups = r->groups,
		.gids = r->gids,
	};

	allow_done(&a);
	range_take_allow(r, &a);
}

/*
 * Room for one more statement in a table the config grows: the first time
 * the cap is hit says so, later ones only fail, so one file does not repeat
 * the same error for every line past the cap.
 */
static int table_limit(struct parser *p, size_t n, bool *full, const char *what)
{
	if (n < DV_CONF_MAX_STATEMENTS)
		return 0;
	if (*full)
		return -EINVAL;
	*full = true;
	return perr(p, "too many %s (at most %d)", what, DV_CONF_MAX_STATEMENTS);
}

/* The table itself, or a larger one when full; NULL when out of memory. */
static void *table_grow(void *tab, size_t n, size_t *cap, size_t first, size_t size)
{
	size_t ncap;
	void *nt;

	if (n < *cap)
		return tab;
	ncap = *cap ? *cap * 2 : first;
	nt = realloc(tab, ncap * size);
	if (nt)
		*cap = ncap;
	return nt;
}

/* MOVEABLE NONDISRUPTIVE|DISRUPTIVE or UNIQUE, before the range. */
static int parse_range_policy(struct parser *p, enum dv_range_policy *policy, bool *options)
{
	if (take_kw(p, "MOVEABLE", 4)) {
		const char *t = take(p);

		if (t && kw_match(t, "NONDISRUPTIVE", 10))
			*policy = DV_POLICY_NONDISRUPTIVE;
		else if (t && kw_match(t, "DISRUPTIVE", 7))
			*policy = DV_POLICY_DISRUPTIVE;
		else if (t)
			return perr(p, "MOVEABLE must be followed by NONDISRUPTIVE or DISRUPTIVE, not \"%s\"", t);
		else
			return perr(p, "MOVEABLE must be followed by NONDISRUPTIVE or DISRUPTIVE");
		*options = true;
	} else if (take_kw(p, "UNIQUE", 0)) {
		*policy = DV_POLICY_UNIQUE;
		*options = true;
	}
	return 0;
}

/* What may follow a range. */
struct range_options {
	bool bindwatch, sourcevipa, saf, allow, routed;
	bool any; /* MOVEABLE or UNIQUE included */
};

/* BINDWATCH, SOURCEVIPA, SAF, ALLOW and ROUTED after the range, in any
 * order, each at most once; SAF and ALLOW both add to a. */
static int parse_range_options(struct parser *p, struct range_options *o, struct allow *a)
{
	static const char *const names[] = {"BINDWATCH", "SOURCEVIPA", "SAF", "ALLOW", "ROUTED"};
	bool *seen[] = {&o->bindwatch, &o->sourcevipa, &o->saf, &o->allow, &o->routed};
	const size_t n = sizeof(names) / sizeof(names[0]);

	for (;;) {
		size_t i = 0;
		int k = 0;

		while (i < n && !take_kw(p, names[i], 0))
			i++;
		if (i == n)
			return 0;
		if (*seen[i])
			return perr(p, "duplicate %s", names[i]);
		*seen[i] = o->any = true;
		if (seen[i] == &o->saf)
			k = parse_saf(p, a);
		else if (seen[i] == &o->allow)
			k = parse_allow(p, a);
		if (k < 0)
			return k;
	}
}

static int range_delete(struct parser *p, struct dv_conf_range *r, const struct dv_prefix *pfx, bool options,
			unsigned line)
{
	char buf[DV_ADDR_STRLEN];

	if (options)
		return err_at(
			p, p->line,
			"VIPARANGE DELETE takes no MOVEABLE, UNIQUE, BINDWATCH, SOURCEVIPA, SAF, ALLOW or ROUTED");
	if (!r || r->deleted)
		return err_at(p, line, "VIPARANGE DELETE of range %s, which is not defined", dv_prefix_fmt(pfx, buf));
	r->deleted = true;
	return 0;
}

/*
 * The entry a DEFINE fills: the deleted one it revives, as now written, or a
 * new one at the end of the table.
 */
static int range_slot(struct parser *p, const struct dv_prefix *pfx, struct dv_conf_range **r)
{
	struct dv_conf *c = p->c;
	struct dv_conf_range *nr;
	int k;

	if (*r) {
		range_drop_allow(*r);
		return 0;
	}
	k = table_limit(p, c->n_ranges, &p->ranges_full, "VIPARANGE statements");
	if (k < 0)
		return k;
	nr = table_grow(c->ranges, c->n_ranges, &p->ranges_cap, 16, sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	c->ranges = nr;
	*r = &c->ranges[c->n_ranges++];
	**r = (struct dv_conf_range){.prefix = *pfx};
	return 0;
}

static int st_viparange(struct parser *p)
{
	_cleanup_(allow_done) struct allow allow = {0};
	enum dv_range_policy policy = DV_POLICY_NONDISRUPTIVE;
	struct range_options o = {0};
	bool del = false;
	char buf[DV_ADDR_STRLEN];
	struct dv_conf_range *r;
	struct dv_prefix pfx;
	unsigned range_line;
	int k;

	if (take_kw(p, "DEFINE", 0))
		del = false;
	else if (take_kw(p, "DELETE", 0))
		del = true;
	k = parse_range_policy(p, &policy, &o.any);
	if (k < 0)
		return k;
	range_line = tok_line(p, p->pos);
	if (parse_range(p, &pfx) < 0)
		return -EINVAL;
	if (!del && check_range_usable(p, &pfx, range_line) < 0)
		return -EINVAL;
	k = parse_range_options(p, &o, &allow);
	if (k < 0)
		return k;
	if (expect_end(p) < 0)
		return -EINVAL;

	r = range_lookup(p->c, &pfx);
	if (del)
		return range_delete(p, r, &pfx, o.any, range_line);
	if (r && !r->deleted)
		return err_at(p, range_line, "duplicate range %s (first at line %u)", dv_prefix_fmt(&pfx, buf),
			      r->line);
	/* The IPv6 side (a local route, ND answered only for the set) is not
	 * built: refused rather than accepted and not honoured. */
	/* Every address of a ROUTED range is local, active or not: the
	 * shim's and libdvipa's source checks would take an inactive one. */
	if (o.routed && o.sourcevipa)
		return err_at(p, range_line, "ROUTED and SOURCEVIPA cannot go together (range %s)",
			      dv_prefix_fmt(&pfx, buf));
	k = range_slot(p, &pfx, &r);
	if (k < 0)
		return k;
	r->deleted = false;
	r->policy = policy;
	r->bindwatch = o.bindwatch;
	r->sourcevipa = o.sourcevipa;
	r->routed = o.routed;
	r->line = p->line;
	range_take_allow(r, &allow);
	return 0;
}

static struct dv_conf_define *define_lookup(struct dv_conf *c, const struct dv_addr *a)
{
	for (size_t i = 0; i < c->n_defines; i++)
		if (dv_addr_eq(&c->defines[i].addr, a))
			return &c->defines[i];
	return NULL;
}

static int add_defines(struct parser *p, size_t n, unsigned rank, enum dv_moveable moveable, uint16_t trackport)
{
	struct dv_conf *c = p->c;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		const struct addr_item *it = &p->items[i];
		const struct dv_conf_define *old = define_lookup(c, &it->addr);
		struct dv_conf_define *nd;
		int k;

		if (old) {
			r = err_at(p, it->line, "duplicate address \"%s\" (first at line %u)", it->tok, old->line);
			continue;
		}
		k = table_limit(p, c->n_defines, &p->defines_full, "VIPADEFINE and VIPABACKUP addresses");
		if (k < 0)
			return k;
		nd = table_grow(c->defines, c->n_defines, &p->defines_cap, 16, sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		c->defines = nd;
		c->defines[c->n_defines++] = (struct dv_conf_define){
			.addr = it->addr,
			.plen = it->plen,
			.rank = rank,
			.moveable = moveable,
			.trackport = trackport,
			.line = p->line,
		};
	}
	return r;
}

static int st_vipadefine(struct parser *p)
{
	enum dv_moveable moveable = DV_MOVE_IMMEDIATE;
	unsigned port = 0;
	size_t n;

	if (take_kw(p, "MOVEABLE", 4)) {
		const char *t = take(p);

		if (t && kw_match(t, "IMMEDIATE", 5))
			moveable = DV_MOVE_IMMEDIATE;
		else if (t && kw_match(t, "WHENIDLE", 0))
			moveable = DV_MOVE_WHENIDLE;
		else if (t)
			return perr(p, "MOVEABLE must be followed by IMMEDIATE or WHENIDLE, not \"%s\"", t);
		else
			return perr(p, "MOVEABLE must be followed by IMMEDIATE or WHENIDLE");
	}
	if (parse_addr_list(p, "VIPADEFINE", true, &n) < 0)
		return -EINVAL;
	if (take_kw(p, "TRACKPORT", 0) && parse_num(p, "TRACKPORT", take(p), 1, 65535, &port) < 0)
		return -EINVAL;
	if (expect_end(p) < 0)
		return -EINVAL;
	return add_defines(p, n, 255, moveable, (uint16_t)port);
}

static int st_vipabackup(struct parser *p)
{
	enum dv_moveable moveable = DV_MOVE_NONE;
	const char *t = peek(p);
	unsigned rank = 1; /* z/OS's default */
	size_t n;

	if (t && is_digits(t)) {
		p->pos++;
		if (parse_num(p, "VIPABACKUP rank", t, 1, 254, &rank) < 0)
			return -EINVAL;
	}
	if (take_kw(p, "MOVEABLE", 4)) {
		t = take(p);
		if (t && kw_match(t, "IMMEDIATE", 5))
			moveable = DV_MOVE_IMMEDIATE;
		else if (t)
			return perr(p, "VIPABACKUP: MOVEABLE must be followed by IMMEDIATE, not \"%s\"", t);
		else
			return perr(p, "VIPABACKUP: MOVEABLE must be followed by IMMEDIATE");
	}
	if (parse_addr_list(p, "VIPABACKUP", false, &n) < 0)
		return -EINVAL;
	return add_defines(p, n, rank, moveable, 0);
}

static int st_vipadelete(struct parser *p)
{
	struct dv_conf *c = p->c;
	int r = 0;
	size_t n;

	if (parse_addr_list(p, "VIPADELETE", false, &n) < 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		struct dv_conf_define *d = define_lookup(c, &p->items[i].addr);

		if (!d) {
			r = err_at(p, p->items[i].line, "no VIPADEFINE or VIPABACKUP for \"%s\"", p->items[i].tok);
			continue;
		}
		memmove(d, d + 1, (size_t)(c->defines + c->n_defines - (d + 1)) * sizeof(*d));
		c->n_defines--;
	}
	return r;
}

/* ---- VIPADISTRIBUTE ------------------------------------------------------------ */

static const struct {
	const char *name;
	unsigned min;
} dist_methods[] = {
	[DV_DIST_BASEWLM] = {"BASEWLM", 0},	  [DV_DIST_SERVERWLM] = {"SERVERWLM", 0},
	[DV_DIST_ROUNDROBIN] = {"ROUNDROBIN", 0}, [DV_DIST_WEIGHTEDACTIVE] = {"WEIGHTEDACTIVE", 9},
	[DV_DIST_HOTSTANDBY] = {"HOTSTANDBY", 0},
};

#define METHOD_LIST "BASEWLM, SERVERWLM, ROUNDROBIN, WEIGHTEDACTIVE or HOTSTANDBY"

const char *dv_dist_method_keyword(enum dv_dist_method m)
{
	if ((size_t)m >= sizeof(dist_methods) / sizeof(dist_methods[0]))
		return "BASEWLM";
	return dist_methods[m].name;
}

static int parse_dist_method(struct parser *p, enum dv_dist_method *ret)
{
	const char *t = peek(p);
	struct dv_addr a;

	if (!t || dv_addr_parse(t, &a) == 0)
		return perr(p, "DISTMETHOD needs one of " METHOD_LIST);
	p->pos++;
	for (size_t i = 0; i < sizeof(dist_methods) / sizeof(dist_methods[0]); i++)
		if (kw_match(t, dist_methods[i].name, dist_methods[i].min)) {
			*ret = (enum dv_dist_method)i;
			return 0;
		}
	return perr(p, "unknown DISTMETHOD \"%s\" (" METHOD_LIST ")", t);
}

/* The options before the address, in any order as on z/OS. */
static int parse_dist_options(struct parser *p, struct dv_conf_distribute *d, bool *ret_any)
{
	bool method = false, affinity = false;

	for (;;) {
		if (take_kw(p, "DISTMETHOD", 5)) {
			if (method)
				return perr(p, "duplicate DISTMETHOD");
			method = true;
			if (parse_dist_method(p, &d->method) < 0)
				return -EINVAL;
		} else if (take_kw(p, "TIMEDAFFINITY", 8)) {
			if (affinity)
				return perr(p, "duplicate TIMEDAFFINITY");
			affinity = true;
			if (parse_num(p, "TIMEDAFFINITY", take(p), 0, DV_DIST_MAX_AFFINITY, &d->affinity_s) < 0)
				return -EINVAL;
		} else if (take_kw(p, "SYSPLEXPORTS", 8)) {
			if (d->sysplexports)
				return perr(p, "duplicate SYSPLEXPORTS");
			d->sysplexports = true;
		} else if (take_kw(p, "OPTLOCAL", 0)) {
			return perr(p, "OPTLOCAL is not supported");
		} else {
			break;
		}
		*ret_any = true;
	}
	if (d->method == DV_DIST_HOTSTANDBY && d->affinity_s)
		return err_at(p, p->line, "TIMEDAFFINITY does not apply to HOTSTANDBY (one active target)");
	return 0;
}

static int parse_dist_addr(struct parser *p, struct dv_addr *ret)
{
	const char *t = peek(p);
	const struct dv_addr_block *bad;

	if (!t || kw_match(t, "PORT", 0))
		return err_at(p, tok_line(p, p->pos), "VIPADISTRIBUTE needs an address");
	p->pos++;
	if (dv_addr_parse(t, ret) < 0)
		return perr(p, "invalid address \"%s\"", t);
	bad = dv_addr_unusable(ret);
	if (bad)
		return perr(p, "\"%s\" cannot be a VIPA (%s)", t, bad->what);
	return 0;
}

static int parse_dist_ports(struct parser *p, struct dv_conf_distribute *d)
{
	const char *t;

	if (!take_kw(p, "PORT", 0))
		return perr(p, "VIPADISTRIBUTE needs PORT");
	while ((t = peek(p)) && is_digits(t)) {
		unsigned port;

		p->pos++;
		if (parse_num(p, "PORT", t, 1, 65535, &port) < 0)
			return -EINVAL;
		for (size_t i = 0; i < d->n_ports; i++)
			if (d->ports[i] == port)
				return perr(p, "duplicate port %u", port);
		if (d->n_ports == DV_DIST_MAX_PORTS)
			return perr(p, "more than %d ports in one VIPADISTRIBUTE (as on z/OS)", DV_DIST_MAX_PORTS);
		/* The slices' replies would go to the slice's node. */
		if (d->sysplexports && port >= DV_DIST_SLICE_POOL_LO && port <= DV_DIST_SLICE_POOL_HI)
			return perr(p, "port %u is in the SYSPLEXPORTS pool (%u-%u, the nodes' outbound ports)", port,
				    DV_DIST_SLICE_POOL_LO, DV_DIST_SLICE_POOL_HI);
		d->ports[d->n_ports++] = (uint16_t)port;
	}
	if (!d->n_ports)
		return perr(p, "PORT needs a port number");
	return 0;
}

/* The statement that distributes port of a, or NULL. */
static struct dv_conf_distribute *dist_lookup(struct dv_conf *c, const struct dv_addr *a, uint16_t port)
{
	for (size_t i = 0; i < c->n_distribute; i++) {
		struct dv_conf_distribute *d = &c->distribute[i];

		if (!dv_addr_eq(&d->addr, a))
			continue;
		for (size_t j = 0; j < d->n_ports; j++)
			if (d->ports[j] == port)
				return d;
	}
	return NULL;
}

/* WEIGHT w, PREFERRED or BACKUP rank after a DESTIP node; what the method
 * allows. */
static int parse_dest_modifier(struct parser *p, struct dv_conf_distribute *d, struct dv_conf_dest *dest)
{
	bool hot = d->method == DV_DIST_HOTSTANDBY;

	if (take_kw(p, "WEIGHT", 0)) {
		if (d->method == DV_DIST_BASEWLM || d->method == DV_DIST_SERVERWLM)
			return perr(p,
				    "WEIGHT applies to DISTMETHOD WEIGHTEDACTIVE only (%s takes the weights from %s)",
				    dv_dist_method_keyword(d->method),
				    d->method == DV_DIST_BASEWLM ? "the targets' spare CPU"
								 : "the listeners' accept-queue headroom");
		if (d->method != DV_DIST_WEIGHTEDACTIVE)
			return perr(p, "WEIGHT applies to DISTMETHOD WEIGHTEDACTIVE only");
		return parse_num(p, "WEIGHT", take(p), 1, DV_DIST_MAX_WEIGHT, &dest->weight);
	}
	if (take_kw(p, "PREFERRED", 0)) {
		if (!hot)
			return perr(p, "PREFERRED applies to DISTMETHOD HOTSTANDBY only");
		dest->rank = DV_DIST_PREFERRED_RANK;
		return 0;
	}
	if (take_kw(p, "BACKUP", 0)) {
		if (!hot)
			return perr(p, "BACKUP applies to DISTMETHOD HOTSTANDBY only");
		return parse_num(p, "BACKUP rank", take(p), 1, 254, &dest->rank);
	}
	if (hot)
		return perr(p, "HOTSTANDBY target \"%s\" needs PREFERRED or BACKUP rank", dest->node);
	if (d->method == DV_DIST_WEIGHTEDACTIVE)
		dest->weight = DV_DIST_DEFAULT_WEIGHT;
	return 0;
}

/* A HOTSTANDBY target's rank against those before it. */
static int check_dest_rank(struct parser *p, const struct dv_conf_distribute *d, const struct dv_conf_dest *dest)
{
	size_t backups = 0;

	for (size_t i = 0; i < d->n_dests; i++) {
		const struct dv_conf_dest *o = &d->dests[i];

		if (o->rank == dest->rank && dest->rank == DV_DIST_PREFERRED_RANK)
			return perr(p, "second PREFERRED target \"%s\" (\"%s\" is PREFERRED)", dest->node, o->node);
		if (o->rank == dest->rank)
			return perr(p, "BACKUP rank %u of \"%s\" is also the rank of \"%s\"", dest->rank, dest->node,
				    o->node);
		backups += o->rank != DV_DIST_PREFERRED_RANK;
	}
	if (dest->rank != DV_DIST_PREFERRED_RANK && backups == DV_DIST_MAX_BACKUPS)
		return perr(p, "more than %d BACKUP targets (as on z/OS)", DV_DIST_MAX_BACKUPS);
	return 0;
}

static int parse_dests(struct parser *p, struct dv_conf_distribute *d)
{
	const char *t;
	bool preferred = false;

	if (!take_kw(p, "DESTIP", 0))
		return err_at(p, tok_line(p, p->pos), "VIPADISTRIBUTE needs DESTIP");
	if (take_kw(p, "ALL", 0)) {
		if (d->method == DV_DIST_HOTSTANDBY)
			return perr(p, "HOTSTANDBY needs named PREFERRED and BACKUP targets, not DESTIP ALL");
		d->dest_all = true;
		if (peek(p))
			return err_at(p, tok_line(p, p->pos), "DESTIP ALL cannot be combined with node names");
		return 0;
	}
	while ((t = take(p))) {
		struct dv_conf_dest dest = {.line = tok_line(p, p->pos - 1)};
		struct dv_addr a;

		if (kw_match(t, "ALL", 0))
			return perr(p, "DESTIP ALL cannot be combined with node names");
		if (dv_addr_parse(t, &a) == 0)
			return perr(p, "DESTIP takes node names (their NODE), not addresses: \"%s\"", t);
		if (check_name(p, "DESTIP node name", t, DV_NODE_NAME_MAX - 1) < 0)
			return -EINVAL;
		for (size_t i = 0; i < d->n_dests; i++)
			if (strcmp(d->dests[i].node, t) == 0)
				return perr(p, "duplicate DESTIP node \"%s\" (first at line %u)", t, d->dests[i].line);
		strcpy(dest.node, t);
		if (parse_dest_modifier(p, d, &dest) < 0)
			return -EINVAL;
		if (d->method == DV_DIST_HOTSTANDBY && check_dest_rank(p, d, &dest) < 0)
			return -EINVAL;
		if (d->n_dests == DV_DIST_MAX_DESTS)
			return perr(p, "more than %d DESTIP targets (as on z/OS)", DV_DIST_MAX_DESTS);
		preferred |= dest.rank == DV_DIST_PREFERRED_RANK;
		d->dests[d->n_dests++] = dest;
	}
	if (!d->n_dests)
		return perr(p, "DESTIP needs ALL or node names");
	if (d->method == DV_DIST_HOTSTANDBY && !preferred)
		return err_at(p, p->line, "HOTSTANDBY needs one PREFERRED target");
	return 0;
}

/* VIPADISTRIBUTE DELETE addr PORT p...: takes those ports out of the
 * statements that distribute them, and a statement left without ports. */
static int dist_delete(struct parser *p, const struct dv_conf_distribute *del, unsigned addr_line)
{
	struct dv_conf *c = p->c;
	char buf[DV_ADDR_STRLEN];
	int r = 0;

	for (size_t i = 0; i < del->n_ports; i++) {
		struct dv_conf_distribute *d = dist_lookup(c, &del->addr, del->ports[i]);
		size_t j = 0;

		if (!d) {
			r = err_at(p, addr_line, "port %u of %s is not distributed", del->ports[i],
				   dv_addr_fmt(&del->addr, buf));
			continue;
		}
		while (d->ports[j] != del->ports[i])
			j++;
		memmove(&d->ports[j], &d->ports[j + 1], (d->n_ports - j - 1) * sizeof(d->ports[0]));
		if (--d->n_ports == 0) {
			memmove(d, d + 1, (size_t)(c->distribute + c->n_distribute - (d + 1)) * sizeof(*d));
			c->n_distribute--;
		}
	}
	return r;
}

static int st_vipadistribute(struct parser *p)
{
	struct dv_conf *c = p->c;
	struct dv_conf_distribute d = {.line = p->line}, *nd;
	bool del = false, options = false;
	char buf[DV_ADDR_STRLEN];
	unsigned addr_line;
	int r;

	if (take_kw(p, "DEFINE", 0))
		del = false;
	else if (take_kw(p, "DELETE", 0))
		del = true;
	if (parse_dist_options(p, &d, &options) < 0)
		return -EINVAL;
	addr_line = tok_line(p, p->pos);
	if (parse_dist_addr(p, &d.addr) < 0 || parse_dist_ports(p, &d) < 0)
		return -EINVAL;
	if (del) {
		if (options || p->pos < p->ntok)
			return err_at(p, p->line, "VIPADISTRIBUTE DELETE takes only an address and PORT");
		return dist_delete(p, &d, addr_line);
	}
	if (parse_dests(p, &d) < 0 || expect_end(p) < 0)
		return -EINVAL;
	for (size_t i = 0; i < d.n_ports; i++) {
		const struct dv_conf_distribute *o = dist_lookup(c, &d.addr, d.ports[i]);

		if (o)
			return err_at(p, addr_line, "port %u of %s is already distributed (line %u)", d.ports[i],
				      dv_addr_fmt(&d.addr, buf), o->line);
	}
	r = table_limit(p, c->n_distribute, &p->distribute_full, "VIPADISTRIBUTE statements");
	if (r < 0)
		return r;
	nd = table_grow(c->distribute, c->n_distribute, &p->distribute_cap, 4, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	c->distribute = nd;
	c->distribute[c->n_distribute++] = d;
	return 0;
}

/*
 * What only the whole file tells: the distributed address must be a
 * VIPADEFINE or VIPABACKUP (whose owner, by rank, is the distributor), and
 * without a cluster the only node DESTIP can name is this one. With a
 * cluster the node names are the members' and are checked against them.
 */
static void check_distribute(struct parser *p)
{
	const struct dv_conf *c = p->c;
	char buf[DV_ADDR_STRLEN];

	for (size_t i = 0; i < c->n_distribute; i++) {
		const struct dv_conf_distribute *d = &c->distribute[i];

		if (!define_lookup(p->c, &d->addr))
			err_at(p, d->line, "VIPADISTRIBUTE address %s is not a VIPADEFINE or VIPABACKUP address",
			       dv_addr_fmt(&d->addr, buf));
		if (c->cluster != DV_CLUSTER_NONE)
			continue;
		for (size_t j = 0; j < d->n_dests; j++)
			if (strcmp(d->dests[j].node, c->node) != 0)
				err_at(p, d->dests[j].line,
				       "unknown DESTIP node \"%s\" (CLUSTER NONE: the only node is \"%s\")",
				       d->dests[j].node, c->node);
	}
}

/*
 * A ROUTED range answers only for the addresses in its nftables set: a
 * range nested in it or around it would have its addresses installed as
 * addresses yet dropped by that filter.
 */
static void check_routed(struct parser *p)
{
	const struct dv_conf *c = p->c;
	char b1[DV_ADDR_STRLEN], b2[DV_ADDR_STRLEN];

	for (size_t i = 0; i < c->n_ranges; i++) {
		const struct dv_conf_range *r = &c->ranges[i];

		if (!r->routed || r->deleted)
			continue;
		for (size_t j = 0; j < c->n_ranges; j++)
			if (j != i && !c->ranges[j].deleted && dv_prefix_overlaps(&r->prefix, &c->ranges[j].prefix))
				err_at(p, r->line, "ROUTED range %s overlaps range %s (line %u)",
				       dv_prefix_fmt(&r->prefix, b1), dv_prefix_fmt(&c->ranges[j].prefix, b2),
				       c->ranges[j].line);
		/* A target sets arp_ignore=1 on the interface, and with it the
		 * kernel answers ARP only for addresses on the interface:
		 * never for a ROUTED range's (measured on Linux 6.18). */
		if (c->n_distribute)
			err_at(p, r->line, "ROUTED range %s and VIPADISTRIBUTE (line %u) cannot go together",
			       dv_prefix_fmt(&r->prefix, b1), c->distribute[0].line);
	}
}

/* ---- statement table and line loop ----------------------------------------- */

enum placement {
	OUTSIDE, /* only outside VIPADYNAMIC */
	INSIDE,	 /* only inside VIPADYNAMIC */
	ANY,	 /* the handler checks */
};

static const struct statement {
	const char *name;
	unsigned min;
	enum placement where;
	int (*parse)(struct parser *p);
} statements[] = {
	{"NODE", 0, OUTSIDE, st_node},
	{"INTERFACE", 0, OUTSIDE, st_interface},
	{"CLUSTER", 0, OUTSIDE, st_cluster},
	{"ANNOUNCE", 0, OUTSIDE, st_announce},
	{"PROBE", 0, OUTSIDE, st_probe},
	{"LEASE", 0, OUTSIDE, st_lease},
	{"MAXUSERVIPAS", 0, OUTSIDE, st_maxuservipas},
	{"METRICS", 0, OUTSIDE, st_metrics},
	{"NICE", 0, OUTSIDE, st_nice},
	{"VIPADYNAMIC", 5, ANY, st_vipadynamic},
	{"ENDVIPADYNAMIC", 8, ANY, st_endvipadynamic},
	{"VIPARANGE", 5, INSIDE, st_viparange},
	{"VIPADEFINE", 7, INSIDE, st_vipadefine},
	{"VIPABACKUP", 5, INSIDE, st_vipabackup},
	{"VIPADELETE", 7, INSIDE, st_vipadelete},
	{"VIPADISTRIBUTE", 8, INSIDE, st_vipadistribute},
};

#define N_STATEMENTS (sizeof(statements) / sizeof(statements[0]))

static const struct statement *find_statement(const char *word)
{
	for (size_t i = 0; i < N_STATEMENTS; i++)
		if (kw_match(word, statements[i].name, statements[i].min))
			return &statements[i];
	return NULL;
}

/*
 * The statement keywords word is too short an abbreviation of: "VIPADE" of
 * VIPADEFINE and VIPADELETE, "NOD" of NODE (which is spelt only in full).
 * Words shorter than 3 characters are taken for no keyword: on an indented
 * line they are more likely operands.
 */
static size_t short_candidates(const char *word, const struct statement *ret[static N_STATEMENTS])
{
	size_t n = 0, len = strlen(word);

	if (len < 3)
		return 0;
	for (size_t i = 0; i < N_STATEMENTS; i++) {
		const struct statement *st = &statements[i];
		size_t min = st->min ? st->min : strlen(st->name);

		if (len < min && strncasecmp(word, st->name, len) == 0)
			ret[n++] = st;
	}
	return n;
}

/* Whether word begins a statement, also as a too short abbreviation (which
 * is then reported as such): a line starting with it continues nothing. */
static bool is_statement_word(const char *word)
{
	const struct statement *c[N_STATEMENTS];

	return find_statement(word) || short_candidates(word, c) > 0;
}

static int unknown_statement(struct parser *p)
{
	const struct statement *c[N_STATEMENTS];
	const char *w = p->tok[0];
	size_t n = short_candidates(w, c);
	char list[N_STATEMENTS * 20] = "";

	if (n == 0)
		return perr(p, "unknown keyword \"%s\"", w);
	if (n == 1 && c[0]->min == 0)
		return perr(p, "unknown keyword \"%s\" (%s cannot be abbreviated)", w, c[0]->name);
	if (n == 1)
		return perr(p, "keyword \"%s\" is abbreviated too far: %s takes at least %.*s", w, c[0]->name,
			    (int)c[0]->min, c[0]->name);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strcat(list, i + 1 < n ? ", " : " or ");
		strcat(list, c[i]->name);
	}
	return perr(p, "ambiguous keyword \"%s\": %s?", w, list);
}

static int parse_statement(struct parser *p)
{
	const struct statement *st = find_statement(p->tok[0]);

	p->pos = 0;
	if (!st)
		return unknown_statement(p);
	if (st->where == OUTSIDE && p->in_block)
		return perr(p, "%s is not allowed inside VIPADYNAMIC", st->name);
	if (st->where == INSIDE && !p->in_block)
		return perr(p, "%s outside VIPADYNAMIC", st->name);
	if (st->where == INSIDE)
		p->vipa_seen = true;
	p->pos = 1;
	return st->parse(p);
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

static bool is_comment(char ch)
{
	/* '#' is dvipa's, ';' z/OS's. */
	return ch == '#' || ch == ';';
}

/*
 * Check one line (without its newline): its length and characters. Returns 0
 * and the length of its text before any comment, -E2BIG, or -EILSEQ with
 * the offending character.
 */
static int check_line(const char *line, size_t len, size_t *ret_len, unsigned char *ret_bad)
{
	if (len > LINE_MAX_LEN)
		return -E2BIG;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (is_comment((char)ch)) {
			len = i;
			break;
		}
		if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f) {
			*ret_bad = ch;
			return -EILSEQ;
		}
	}
	*ret_len = len;
	return 0;
}

/* The first word of a line, cut to size (no keyword is that long); "" when
 * the line has none before a comment. */
static void first_word(const char *line, size_t len, char word[static 32])
{
	size_t i = 0, n = 0;

	while (i < len && is_blank(line[i]))
		i++;
	while (i < len && n < 31 && !is_blank(line[i]) && !is_comment(line[i]))
		word[n++] = line[i++];
	word[n] = 0;
}

/* Parse the statement read so far, if any and unbroken, and start afresh. */
static int end_statement(struct parser *p)
{
	int r = 0;

	if (p->open && !p->broken && p->ntok > 0)
		r = parse_statement(p);
	p->open = p->broken = false;
	p->ntok = p->pos = p->buf_len = 0;
	return r == -ENOMEM ? r : 0;
}

/* Add the tokens of one checked line to the statement. */
static void add_tokens(struct parser *p, unsigned line, const char *text, size_t len)
{
	char *s = p->buf + p->buf_len;

	if (len + 1 > sizeof(p->buf) - p->buf_len) {
		err_at(p, line, "statement too long (more than %d characters with its continuation lines)",
		       STMT_MAX_LEN);
		p->broken = true;
		return;
	}
	memcpy(s, text, len);
	s[len] = 0;
	p->buf_len += len + 1;
	for (;;) {
		while (is_blank(*s))
			s++;
		if (!*s)
			break;
		p->tok_line[p->ntok] = line;
		p->tok[p->ntok++] = s;
		while (*s && !is_blank(*s))
			s++;
		if (!*s)
			break;
		*s++ = 0;
	}
}

/*
 * One line of the file. A line that starts with a blank and whose first word
 * is not a statement keyword continues the statement before it, as z/OS
 * profiles continue statements; blank and comment lines in between do not
 * end it. A line with an error drops the statement it belongs to, so that
 * its other lines do not add errors of their own.
 */
static int read_line(struct parser *p, unsigned line, const char *s, size_t len)
{
	unsigned char bad = 0;
	size_t text_len = 0;
	char word[32];
	int err = check_line(s, len, &text_len, &bad);

	first_word(s, len, word);
	if (err == 0 && !word[0])
		return 0;
	if (!(p->open && len > 0 && is_blank(s[0]) && !is_statement_word(word))) {
		if (end_statement(p) < 0)
			return -ENOMEM;
		p->open = true;
		p->line = line;
	}
	if (err == -E2BIG)
		err_at(p, line, "line too long (more than %d characters)", LINE_MAX_LEN);
	else if (err < 0)
		err_at(p, line, "invalid character 0x%02x", bad);
	if (err < 0)
		p->broken = true;
	else if (!p->broken)
		add_tokens(p, line, s, text_len);
	return 0;
}

static int range_cmp(const void *x, const void *y)
{
	const struct dv_conf_range *a = x, *b = y;

	if (a->prefix.len != b->prefix.len)
		return a->prefix.len > b->prefix.len ? -1 : 1;
	return dv_addr_cmp(&a->prefix.addr, &b->prefix.addr);
}

static int define_cmp(const void *x, const void *y)
{
	const struct dv_conf_define *a = x, *b = y;

	return dv_addr_cmp(&a->addr, &b->addr);
}

/* The host name, cut to what NODE accepts so that the printed config parses
 * back. */
static void default_node(char node[static DV_NODE_NAME_MAX])
{
	char host[256] = "";
	size_t i;

	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = 0;
	host[sizeof(host) - 1] = 0;
	for (i = 0; i < DV_NODE_NAME_MAX - 1 && host[i]; i++)
		node[i] = valid_name_char(host[i]) ? host[i] : '_';
	node[i] = 0;
	if (i == 0)
		strcpy(node, "localhost");
}

struct dv_conf *dv_conf_free(struct dv_conf *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n_ranges; i++)
		range_drop_allow(&c->ranges[i]);
	free(c->ranges);
	free(c->defines);
	free(c->distribute);
	free(c->file);
	free(c);
	return NULL;
}

int dv_conf_parse_string(const char *name, const char *text, size_t len, FILE *errf, struct dv_conf **ret,
			 unsigned *ret_nerrors)
{
	_cleanup_conf_ struct dv_conf *c = NULL;
	_cleanup_free_ struct parser *p = NULL;
	const char *end = text + len;
	unsigned line = 0;

	if (ret_nerrors)
		*ret_nerrors = 0;
	if (!text && len)
		return -EINVAL;
	if (!name)
		name = "(string)";
	c = calloc(1, sizeof(*c));
	p = calloc(1, sizeof(*p));
	if (!c || !p)
		return -ENOMEM;
	c->file = strdup(name);
	if (!c->file)
		return -ENOMEM;
	c->cluster = DV_CLUSTER_NONE;
	strcpy(c->group, "dvipa");
	c->announce_count = 3;
	c->announce_interval_ms = 500;
	c->probe_count = 2;
	c->probe_interval_ms = 100;
	c->lease_s = 30;
	c->user_vipas = DV_CONF_USER_VIPAS;
	c->nice = DV_CONF_NICE;
	p->c = c;
	p->file = c->file;
	p->errf = errf;

	for (const char *s = text; s && s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);

		if (read_line(p, ++line, s, n) < 0)
			return -ENOMEM;
		s += n + 1;
		if (p->nerrors >= MAX_ERRORS && s < end) {
			err_at(p, line, "%u errors: not reading further", p->nerrors);
			break;
		}
	}
	if (p->nerrors < MAX_ERRORS) {
		if (end_statement(p) < 0)
			return -ENOMEM;
		if (p->in_block)
			err_at(p, p->block_line, "VIPADYNAMIC without ENDVIPADYNAMIC");
		/* An INTERFACE statement with an error was reported already. */
		if (p->vipa_seen && !p->interface_line)
			err_at(p, p->first_block_line, "no INTERFACE statement");
		if (!p->node_line)
			default_node(c->node);
		check_distribute(p);
		check_routed(p);
	}
	if (ret_nerrors)
		*ret_nerrors = p->nerrors;
	if (p->nerrors)
		return -EINVAL;

	if (c->n_ranges)
		qsort(c->ranges, c->n_ranges, sizeof(*c->ranges), range_cmp);
	if (c->n_defines)
		qsort(c->defines, c->n_defines, sizeof(*c->defines), define_cmp);
	*ret = TAKE_PTR(c);
	return 0;
}

int dv_conf_parse_file(const char *path, FILE *errf, struct dv_conf **ret, unsigned *ret_nerrors)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	if (ret_nerrors)
		*ret_nerrors = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int r = -errno;

		if (errf)
			fprintf(errf, "%s: %s\n", path, strerror(-r));
		return r;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap >= FILE_MAX_SIZE) {
				if (errf)
					fprintf(errf, "%s: larger than %u MiB: not a dvipa configuration\n", path,
						FILE_MAX_SIZE >> 20);
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int r = -errno;

			if (r == -EINTR)
				continue;
			if (errf)
				fprintf(errf, "%s: %s\n", path, strerror(-r));
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	return dv_conf_parse_string(path, buf, len, errf, ret, ret_nerrors);
}
