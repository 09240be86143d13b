/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The distributed VIPAs' nftables ruleset as text (dist_rules.h). Mechanisms
 * and nft 1.0.6 quirks: ../shared/reference/distributed.md. The quirks this
 * honours: a slot map is declared "type mark : mark" (a map declared "typeof
 * jhash ..." loads but makes listing the ruleset crash); every "}" follows a
 * newline; existing elements are flushed, never added again.
 */
#include "dist_rules.h"

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "maglev.h"

/*
 * Pins per service. They hold the open connections plus those that closed
 * in the last DV_DIST_PIN_CLOSE_S: 262,144 is, for instance, 200,000 open
 * ones and 6,000 new ones a second. When it is full, new connections go by
 * the slot table, unpinned (pin_rules).
 */
#define MAX_PINS 262144
#define DV_DIST_MAX_SLICES 65536
#define SLOTS_PER_LINE 16

static bool valid_word(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= max)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
		      *s == '-' || *s == '_'))
			return false;
	return true;
}

bool dv_dist_rules_hashed(enum dv_dist_method m)
{
	return m == DV_DIST_BASEWLM || m == DV_DIST_SERVERWLM || m == DV_DIST_HOTSTANDBY;
}

static int check_target(const struct dv_dist_service *s, const struct dv_dist_target *t)
{
	if (t->name && !valid_word(t->name, DV_NODE_NAME_MAX))
		return -EINVAL;
	switch (t->fwd) {
	case DV_DIST_FWD_LOCAL:
		return 0;
	case DV_DIST_FWD_ETHER:
		return valid_word(t->ifname, IF_NAMESIZE) ? 0 : -EINVAL;
	case DV_DIST_FWD_NEXTHOP:
		return valid_word(t->ifname, IF_NAMESIZE) && t->next.family == s->vipa.family ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

static int check_service(const struct dv_dist_service *s)
{
	if (s->vipa.family != AF_INET && s->vipa.family != AF_INET6)
		return -EINVAL;
	if (s->n_ports == 0 || s->n_ports > DV_DIST_MAX_PORTS || (unsigned)s->method > DV_DIST_HOTSTANDBY)
		return -EINVAL;
	for (size_t i = 0; i < s->n_ports; i++)
		if (s->ports[i] == 0)
			return -EINVAL;
	if (s->n_targets > DV_MAGLEV_MAX_TARGETS || s->m > DV_MAGLEV_M_MAX ||
	    s->m < (dv_dist_rules_hashed(s->method) ? 2 : 1))
		return -EINVAL;
	for (size_t i = 0; i < s->n_targets; i++)
		if (check_target(s, &s->targets[i]) < 0)
			return -EINVAL;
	for (uint32_t i = 0; i < s->m; i++)
		if (s->slots[i] != DV_MAGLEV_NONE && s->slots[i] >= s->n_targets)
			return -EINVAL;
	return 0;
}

static int check_slice(const struct dv_dist_slice *x)
{
	struct dv_dist_service s = {.vipa = x->vipa};

	if ((x->vipa.family != AF_INET && x->vipa.family != AF_INET6) || x->lo == 0 || x->hi < x->lo ||
	    x->target.fwd == DV_DIST_FWD_LOCAL)
		return -EINVAL;
	return check_target(&s, &x->target);
}

static int check_ruleset(const struct dv_dist_ruleset *rs)
{
	if (!valid_word(rs->ifname, IF_NAMESIZE) || rs->n_services > DV_DIST_MAX_SERVICES ||
	    rs->n_slices > DV_DIST_MAX_SLICES || (rs->n_slices && !rs->slices))
		return -EINVAL;
	for (size_t i = 0; i < rs->n_services; i++)
		if (check_service(&rs->services[i]) < 0)
			return -EINVAL;
	for (size_t i = 0; i < rs->n_slices; i++)
		if (check_slice(&rs->slices[i]) < 0)
			return -EINVAL;
	return 0;
}

/* ---- pieces of text ---- */

static const char *l3(const struct dv_dist_service *s)
{
	return s->vipa.family == AF_INET6 ? "ip6" : "ip";
}

static const char *addr_type(const struct dv_dist_service *s)
{
	return s->vipa.family == AF_INET6 ? "ipv6_addr" : "ipv4_addr";
}

static void mac(FILE *f, const uint8_t m[6])
{
	fprintf(f, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* The slot map's elements, without the braces; nothing when all are empty. */
static void slot_elements(FILE *f, const struct dv_dist_service *s, const char *indent)
{
	size_t n = 0;

	for (uint32_t i = 0; i < s->m; i++) {
		if (s->slots[i] == DV_MAGLEV_NONE)
			continue;
		if (n)
			fputs(n % SLOTS_PER_LINE ? ", " : ",\n", f);
		if (n % SLOTS_PER_LINE == 0)
			fputs(indent, f);
		fprintf(f, "%u : %u", i, s->slots[i] + 1);
		n++;
	}
	if (n)
		fputc('\n', f);
}

/* The marks of the targets with a slot, comma-separated: the targets a
 * client's affinity or a handshake's pin may send a SYN to (sN_up). The
 * number written. */
static size_t up_elements(FILE *f, const struct dv_dist_service *s)
{
	size_t n = 0;

	for (size_t k = 0; k < s->n_targets; k++)
		for (uint32_t i = 0; i < s->m; i++)
			if (s->slots[i] == k) {
				fprintf(f, "%s%zu", n++ ? ", " : "", k + 1);
				break;
			}
	return n;
}

/* sN_up's elements again, after the slots changed: in the same
 * transaction. */
static void up_update(FILE *f, size_t i, const struct dv_dist_service *s)
{
	fprintf(f, "flush set netdev %s s%zu_up\n", DV_DIST_TABLE, i);
	fprintf(f, "add element netdev %s s%zu_up { ", DV_DIST_TABLE, i);
	if (!up_elements(f, s))
		fputs("0", f); /* no target: a mark no pin has */
	fputs(" }\n", f);
}

static bool any_slot(const struct dv_dist_service *s)
{
	for (uint32_t i = 0; i < s->m; i++)
		if (s->slots[i] != DV_MAGLEV_NONE)
			return true;
	return false;
}

/* A map of key -> mark (kind "map"), a set of key . mark ("set"), or a
 * set of key (NULL), written from the packet path. */
static void dynamic_map(FILE *f, size_t i, const char *name, const char *key, const char *kind, uint32_t timeout_ms)
{
	fprintf(f, "\t%s s%zu_%s {\n", kind ? kind : "set", i, name);
	fprintf(f, "\t\ttype %s%s\n", key, !kind ? "" : strcmp(kind, "map") == 0 ? " : mark" : " . mark");
	fputs("\t\tflags dynamic,timeout\n", f);
	if (timeout_ms % 1000)
		fprintf(f, "\t\ttimeout %ums\n", timeout_ms);
	else
		fprintf(f, "\t\ttimeout %us\n", timeout_ms / 1000);
	fprintf(f, "\t\tsize %u\n", MAX_PINS);
	fputs("\t}\n", f);
}

/* The statements that send a packet of l3 family ip to t, and a newline. */
static void fwd_to(FILE *f, const char *ip, const struct dv_dist_target *t)
{
	char buf[DV_ADDR_STRLEN];

	switch (t->fwd) {
	case DV_DIST_FWD_ETHER:
		fputs("ether saddr set ", f);
		mac(f, t->src_mac);
		fputs(" ether daddr set ", f);
		mac(f, t->mac);
		fprintf(f, " fwd to \"%s\"\n", t->ifname);
		break;
	case DV_DIST_FWD_NEXTHOP:
		fprintf(f, "fwd %s to %s device \"%s\"\n", ip, dv_addr_fmt(&t->next, buf), t->ifname);
		break;
	default:
		fputs("accept\n", f);
		break;
	}
}

static void target_chain(FILE *f, size_t i, size_t k, const struct dv_dist_service *s)
{
	const struct dv_dist_target *t = &s->targets[k];

	fprintf(f, "\tchain s%zu_t%zu {\n", i, k + 1);
	if (t->name)
		fprintf(f, "\t\tcomment \"%s\"\n", t->name);
	fputs("\t\t", f);
	fwd_to(f, l3(s), t);
	fputs("\t}\n", f);
}

/* The expression that picks a slot for a new connection. Its value goes
 * through the mark into the slot map: a map declared "type mark : mark"
 * takes only a mark as key, and "typeof jhash" is the quirk above. */
static void slot_choice(FILE *f, const struct dv_dist_service *s)
{
	if (dv_dist_rules_hashed(s->method))
		fprintf(f, "jhash %s saddr . tcp sport mod %u seed 0x%08x", l3(s), s->m, s->seed);
	else
		fprintf(f, "numgen %s mod %u", s->method == DV_DIST_ROUNDROBIN ? "inc" : "random", s->m);
}

/* Refresh the pin (timeout_s: its own timeout; 0: the map's) and the
 * client's affinity, then go to the target. When the map is full the
 * update fails, which ends only its own rule: the connection goes where
 * the slot table says, unpinned. */
static void pin_rules(FILE *f, size_t i, const struct dv_dist_service *s, const char *pin, uint32_t timeout_s)
{
	char t[32] = "";

	if (timeout_s)
		snprintf(t, sizeof(t), " timeout %us", timeout_s);
	if (s->vipa.family == AF_INET)
		fprintf(f, "\t\tupdate @s%zu_vcrt { %s%s : meta mark }\n", i, pin, t);
	else
		fprintf(f, "\t\tupdate @s%zu_vcrt { %s . meta mark%s }\n", i, pin, t);
	if (s->affinity_s)
		fprintf(f, "\t\tupdate @s%zu_aff { %s saddr : meta mark }\n", i, l3(s));
	fprintf(f, "\t\tmeta mark vmap @s%zu_to\n", i);
}

static void service_chains(FILE *f, size_t i, const struct dv_dist_service *s)
{
	const char *ip = l3(s);
	char pin[96];

	snprintf(pin, sizeof(pin), "%s saddr . tcp sport . tcp dport", ip);

	/*
	 * An open connection's pin (sN_vcrt) first. Then a handshake's
	 * (sN_syn: a SYN pins there, the handshake's ACK pins the connection
	 * in sN_vcrt): the client's other packets follow it; a retransmitted
	 * SYN follows it while its target has slots (sN_up), else the pin goes
	 * and the SYN chooses again: a target that dropped it (its server
	 * died: the targets' table) is left once the slots have moved. nft
	 * cannot overwrite a map element's value, nor delete one of a map
	 * from the packet path: sN_syn is a set with the mark in the key, as
	 * IPv6 pins are (see service()), tried target by target. A SYN that
	 * reuses an open pin's client address and port follows it.
	 */
	fprintf(f, "\tchain s%zu {\n", i);
	if (s->vipa.family == AF_INET)
		fprintf(f, "\t\tmeta mark set %s map @s%zu_vcrt goto s%zu_go\n", pin, i, i);
	else
		for (size_t k = 0; k < s->n_targets; k++)
			fprintf(f, "\t\tmeta mark set %zu %s . meta mark @s%zu_vcrt goto s%zu_go\n", k + 1, pin, i, i);
	for (size_t k = 0; k < s->n_targets; k++)
		fprintf(f,
			"\t\ttcp flags & (syn | ack) != syn meta mark set %zu %s . meta mark @s%zu_syn goto s%zu_go\n",
			k + 1, pin, i, i);
	for (size_t k = 0; k < s->n_targets; k++)
		fprintf(f, "\t\tmeta mark set %zu %s . meta mark @s%zu_syn meta mark @s%zu_up goto s%zu_go\n", k + 1,
			pin, i, i, i);
	for (size_t k = 0; k < s->n_targets; k++)
		fprintf(f, "\t\tmeta mark set %zu %s . meta mark @s%zu_syn delete @s%zu_syn { %s . meta mark }\n",
			k + 1, pin, i, i, pin);
	/* A new connection: the client's affinity while its target has slots
	 * (one that went, or whose server died, is passed over), else the
	 * method's choice. */
	if (s->affinity_s)
		fprintf(f,
			"\t\ttcp flags & (syn | ack) == syn meta mark set %s saddr map @s%zu_aff meta mark @s%zu_up "
			"goto "
			"s%zu_go\n",
			ip, i, i, i);
	fputs("\t\ttcp flags & (syn | ack) == syn meta mark set ", f);
	slot_choice(f, s);
	fprintf(f, " meta mark set meta mark map @s%zu_slots goto s%zu_go\n", i, i);
	/* No pin and not a SYN (a pin expired, or a new distributor has not
	 * loaded it yet): a hash still names a target, the one the
	 * connection most likely started on; a draw does not, and such a
	 * packet is dropped (a target here would refuse it): the client sends
	 * it again, by when the targets' lists may have come. */
	if (dv_dist_rules_hashed(s->method)) {
		fputs("\t\tmeta mark set ", f);
		slot_choice(f, s);
		fprintf(f, " meta mark set meta mark map @s%zu_slots meta mark vmap @s%zu_to\n", i, i);
	} else {
		fputs("\t\ttcp flags & (syn | ack) != syn drop\n", f);
	}
	/* Not steered: leave no slot number behind for the stack here. */
	fputs("\t\tmeta mark set 0\n", f);
	fputs("\t}\n", f);

	/*
	 * Pin (again: refreshed), keep the client's affinity, go. One
	 * statement per rule: nft 1.0.6 fails an assertion on any statement
	 * after an update with an IPv6 concatenation.
	 *
	 * A pin lasts DV_DIST_PIN_TIMEOUT_S after the connection's last packet
	 * while it is open, DV_DIST_PIN_CLOSE_S once the client sent a FIN or
	 * a RST (the distributor sees the client's half only: DSR). sN_fin
	 * remembers such connections, so that the client's last ACK (of the
	 * server's FIN, after its own) keeps the short timeout; a SYN on the
	 * same address and port starts a connection afresh. Without this, the
	 * pins of closed connections stayed 2 h and filled the map in 41 s at
	 * 6,400 connections/s.
	 */
	fprintf(f, "\tchain s%zu_go {\n", i);
	fprintf(f, "\t\ttcp flags & (syn | ack) == syn delete @s%zu_fin { %s }\n", i, pin);
	fprintf(f, "\t\ttcp flags & (syn | ack) == syn goto s%zu_syn\n", i);
	fprintf(f, "\t\ttcp flags & (fin | rst) != 0 goto s%zu_end\n", i);
	fprintf(f, "\t\t%s @s%zu_fin goto s%zu_end\n", pin, i, i);
	pin_rules(f, i, s, pin, 0);
	fputs("\t}\n", f);
	fprintf(f, "\tchain s%zu_end {\n", i);
	fprintf(f, "\t\tupdate @s%zu_fin { %s }\n", i, pin);
	pin_rules(f, i, s, pin, DV_DIST_PIN_CLOSE_S);
	fputs("\t}\n", f);
	/* A SYN: the handshake's pin only; the affinity waits for the
	 * connection (a SYN to a target that dropped it must not keep its
	 * client there). */
	fprintf(f, "\tchain s%zu_syn {\n", i);
	fprintf(f, "\t\tupdate @s%zu_syn { %s . meta mark }\n", i, pin);
	fprintf(f, "\t\tmeta mark vmap @s%zu_to\n", i);
	fputs("\t}\n", f);
}

static void service(FILE *f, size_t i, const struct dv_dist_service *s)
{
	char buf[DV_ADDR_STRLEN], key[64];

	fprintf(f, "\t# s%zu: %s, DISTMETHOD %s\n", i, dv_addr_fmt(&s->vipa, buf), dv_dist_method_keyword(s->method));
	for (size_t k = 0; k < s->n_targets; k++)
		target_chain(f, i, k, s);
	/* nft 1.0.6 cannot write a map element with a key longer than 16
	 * bytes from the packet path (an assertion fails in its register
	 * allocation), so IPv6 pins are a set keyed by the connection and its
	 * target's mark. */
	snprintf(key, sizeof(key), "%s . inet_service . inet_service", addr_type(s));
	dynamic_map(f, i, "vcrt", key, s->vipa.family == AF_INET ? "map" : "set",
		    (s->pin_timeout_s ? s->pin_timeout_s : DV_DIST_PIN_TIMEOUT_S) * 1000);
	dynamic_map(f, i, "syn", key, "set", DV_DIST_SYN_PIN_S * 1000);
	dynamic_map(f, i, "fin", key, NULL, DV_DIST_PIN_CLOSE_S * 1000);
	if (s->affinity_s)
		dynamic_map(f, i, "aff", addr_type(s), "map", s->affinity_s * 1000);
	fprintf(f, "\tset s%zu_up {\n\t\ttype mark\n\t\telements = { ", i);
	if (!up_elements(f, s))
		fputs("0", f);
	fputs(" }\n\t}\n", f);
	fprintf(f, "\tmap s%zu_slots {\n\t\ttype mark : mark\n", i);
	if (any_slot(s)) {
		fputs("\t\telements = {\n", f);
		slot_elements(f, s, "\t\t\t");
		fputs("\t\t}\n", f);
	}
	fputs("\t}\n", f);
	fprintf(f, "\tmap s%zu_to {\n\t\ttype mark : verdict\n", i);
	if (s->n_targets) {
		fputs("\t\telements = {", f);
		for (size_t k = 0; k < s->n_targets; k++)
			fprintf(f, "%s%zu : goto s%zu_t%zu", k ? ", " : " ", k + 1, i, k + 1);
		fputs(" }\n", f);
	}
	fputs("\t}\n", f);
	service_chains(f, i, s);
}

/* The base chain's rules, each line after prefix. */
static void ingress_rules(FILE *f, const struct dv_dist_ruleset *rs, const char *prefix)
{
	char buf[DV_ADDR_STRLEN];

	/* Replies to another node's outbound connections from a VIPA. */
	for (size_t i = 0; i < rs->n_slices; i++) {
		const struct dv_dist_slice *x = &rs->slices[i];
		const char *ip = x->vipa.family == AF_INET6 ? "ip6" : "ip";

		if (!x->distributing)
			continue;
		fprintf(f, "%s%s daddr %s meta l4proto { tcp, udp } th dport %u-%u ", prefix, ip,
			dv_addr_fmt(&x->vipa, buf), x->lo, x->hi);
		fwd_to(f, ip, &x->target);
	}
	for (size_t i = 0; i < rs->n_services; i++) {
		const struct dv_dist_service *s = &rs->services[i];

		/* Only the owner of the address steers it: elsewhere a packet
		 * for it came from the distributor and is served here. */
		if (!s->distributing)
			continue;
		fprintf(f, "%s%s daddr %s tcp dport {", prefix, l3(s), dv_addr_fmt(&s->vipa, buf));
		for (size_t p = 0; p < s->n_ports; p++)
			fprintf(f, "%s%u", p ? ", " : " ", s->ports[p]);
		fprintf(f, " } jump s%zu\n", i);
	}
}

/* The distributed addresses and ports of one family, as the elements of a
 * set of "addr . port". */
static void service_set(FILE *f, const struct dv_dist_ruleset *rs, int family, const char *name)
{
	char buf[DV_ADDR_STRLEN];
	size_t n = 0;

	fprintf(f, "\tset %s {\n\t\ttype %s . inet_service\n", name, family == AF_INET ? "ipv4_addr" : "ipv6_addr");
	for (size_t i = 0; i < rs->n_services; i++) {
		const struct dv_dist_service *s = &rs->services[i];

		if (s->vipa.family != family)
			continue;
		for (size_t p = 0; p < s->n_ports; p++)
			fprintf(f, "%s%s . %u", n++ ? ", " : "\t\telements = { ", dv_addr_fmt(&s->vipa, buf),
				s->ports[p]);
	}
	fputs(n ? " }\n\t}\n" : "\t}\n", f);
}

/*
 * The targets' side, on every node (a target, or the distributor serving
 * here): a packet to a distributed address and port that no socket here
 * takes is dropped, not refused.
 *  - A SYN: its server died or is restarting, and the slots leave this
 *    node once its report has reached the distributor; the client sends
 *    the SYN again (after 1 s, then 2 s more), which chooses again
 *    (sN_syn), instead of failing at once.
 *  - Any other: a distributor that just took over and has not loaded the
 *    pins of a drawn connection (ROUNDROBIN, WEIGHTEDACTIVE) yet serves it
 *    here; the client sends it again, and finds the pin.
 * The socket lookup needs the inet family: a second table, in the same
 * transactions.
 */
static void targets_table(FILE *f, const struct dv_dist_ruleset *rs)
{
	fprintf(f, "table inet %s {\n", DV_DIST_TABLE);
	service_set(f, rs, AF_INET, "svc4");
	service_set(f, rs, AF_INET6, "svc6");
	fputs("\tchain prerouting {\n", f);
	fputs("\t\ttype filter hook prerouting priority -150; policy accept;\n", f);
	/* This node's own programs: refused at once, as ever. */
	fputs("\t\tiif \"lo\" accept\n", f);
	fputs("\t\tip daddr . tcp dport @svc4 goto no_socket\n", f);
	fputs("\t\tip6 daddr . tcp dport @svc6 goto no_socket\n", f);
	fputs("\t}\n", f);
	/* "socket transparent" matches (0 or 1) only when a socket, a
	 * listener included, takes the packet. */
	fputs("\tchain no_socket {\n", f);
	fputs("\t\tsocket transparent { 0, 1 } accept\n", f);
	fputs("\t\tdrop\n", f);
	fputs("\t}\n}\n", f);
}

int dv_dist_rules_write(const struct dv_dist_ruleset *rs, FILE *f)
{
	int r = check_ruleset(rs);

	if (r < 0)
		return r;
	fprintf(f, "table netdev %s {\n", DV_DIST_TABLE);
	for (size_t i = 0; i < rs->n_services; i++)
		service(f, i, &rs->services[i]);
	fputs("\tchain ingress {\n", f);
	fprintf(f, "\t\ttype filter hook ingress device \"%s\" priority 0; policy accept;\n", rs->ifname);
	ingress_rules(f, rs, "\t\t");
	fputs("\t}\n}\n", f);
	targets_table(f, rs);
	return ferror(f) ? -EIO : 0;
}

int dv_dist_rules_write_ingress(const struct dv_dist_ruleset *rs, FILE *f)
{
	char prefix[64];
	int r = check_ruleset(rs);

	if (r < 0)
		return r;
	fprintf(f, "flush chain netdev %s ingress\n", DV_DIST_TABLE);
	snprintf(prefix, sizeof(prefix), "add rule netdev %s ingress ", DV_DIST_TABLE);
	ingress_rules(f, rs, prefix);
	return ferror(f) ? -EIO : 0;
}

int dv_dist_rules_write_slots(const struct dv_dist_ruleset *rs, size_t i, FILE *f)
{
	const struct dv_dist_service *s;
	int r = check_ruleset(rs);

	if (r < 0)
		return r;
	if (i >= rs->n_services)
		return -EINVAL;
	s = &rs->services[i];
	fprintf(f, "flush map netdev %s s%zu_slots\n", DV_DIST_TABLE, i);
	if (any_slot(s)) {
		fprintf(f, "add element netdev %s s%zu_slots {\n", DV_DIST_TABLE, i);
		slot_elements(f, s, "\t");
		fputs("}\n", f);
	}
	up_update(f, i, s);
	return ferror(f) ? -EIO : 0;
}

/* Slot numbers (with their marks: values) where pick(old, new) holds, as an
 * element list; the number written. */
static size_t delta_elements(FILE *f, const struct dv_dist_service *s, const uint32_t *old, bool values)
{
	size_t n = 0;

	for (uint32_t i = 0; i < s->m; i++) {
		uint32_t was = old[i], now = s->slots[i];

		if (was == now || (values ? now == DV_MAGLEV_NONE : was == DV_MAGLEV_NONE))
			continue;
		fputs(n % SLOTS_PER_LINE ? ", " : n ? ",\n\t" : "\t", f);
		if (values)
			fprintf(f, "%u : %u", i, now + 1);
		else
			fprintf(f, "%u", i);
		n++;
	}
	return n;
}

/* delta_elements() into a buffer of its own. */
static int delta_text(const struct dv_dist_service *s, const uint32_t *old, bool values, char **ret, size_t *ret_n)
{
	size_t len = 0;
	FILE *g = open_memstream(ret, &len);

	if (!g)
		return -ENOMEM;
	*ret_n = delta_elements(g, s, old, values);
	return fclose(g) == 0 ? 0 : -ENOMEM;
}

int dv_dist_rules_write_slot_delta(const struct dv_dist_ruleset *rs, size_t i, const uint32_t *old, FILE *f)
{
	const struct dv_dist_service *s;
	_cleanup_free_ char *del = NULL, *add = NULL;
	size_t n_del = 0, n_add = 0;
	int r = check_ruleset(rs);

	if (r < 0)
		return r;
	if (i >= rs->n_services || !old)
		return -EINVAL;
	s = &rs->services[i];
	for (uint32_t k = 0; k < s->m; k++)
		if (old[k] != DV_MAGLEV_NONE && old[k] >= s->n_targets)
			return -EINVAL;
	/* Re-pointed slots are deleted and added again in the same
	 * transaction: nft 1.0.6 cannot overwrite an element. */
	r = delta_text(s, old, false, &del, &n_del);
	if (r == 0)
		r = delta_text(s, old, true, &add, &n_add);
	if (r < 0)
		return r;
	if (n_del)
		fprintf(f, "delete element netdev %s s%zu_slots {\n%s\n}\n", DV_DIST_TABLE, i, del);
	if (n_add)
		fprintf(f, "add element netdev %s s%zu_slots {\n%s\n}\n", DV_DIST_TABLE, i, add);
	if (n_del || n_add)
		up_update(f, i, s);
	return ferror(f) ? -EIO : 0;
}
