/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The range table dvipad publishes for the preload shim (rangetab.h). */
#include "rangetab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int entry_cmp(const struct dv_rangetab_entry *x, const struct dv_rangetab_entry *y)
{
	if (x->family != y->family)
		return x->family == AF_INET ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->bytes, y->bytes, sizeof(x->bytes));
}

static int entry_qcmp(const void *x, const void *y)
{
	return entry_cmp(x, y);
}

int dv_rangetab_path(const char *sock, char *buf, size_t size)
{
	size_t n = strlen(sock);

	if (n + sizeof(DV_RANGETAB_SUFFIX) > size)
		return -ENAMETOOLONG;
	memcpy(buf, sock, n);
	memcpy(buf + n, DV_RANGETAB_SUFFIX, sizeof(DV_RANGETAB_SUFFIX));
	return 0;
}

int dv_rangetab_write(struct dv_rangetab *t, const struct dv_prefix *p, size_t n)
{
	struct dv_rangetab_hdr h = {.magic = DV_RANGETAB_MAGIC, .version = DV_RANGETAB_VERSION, .n = (uint32_t)n};
	struct dv_rangetab_entry *e;
	uint32_t seq;

	if (n > DV_RANGETAB_MAX)
		return -ENOSPC;
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		e[i].family = p[i].addr.family;
		e[i].len = p[i].len;
		memcpy(e[i].bytes, p[i].addr.bytes, dv_addr_size(&p[i].addr));
		uint64_t *first = e[i].family == AF_INET ? h.first4 : h.first6;
		unsigned lo = e[i].bytes[0], hi = e[i].len >= 8 ? lo : lo | (0xffu >> e[i].len);

		if (e[i].family == AF_INET)
			h.lens4 |= 1ull << e[i].len;
		else
			h.lens6[e[i].len / 64] |= 1ull << (e[i].len % 64);
		for (unsigned b = lo; b <= hi; b++)
			first[b / 64] |= 1ull << (b % 64);
	}
	qsort(e, n, sizeof(*e), entry_qcmp);

	seq = __atomic_load_n(&t->hdr.seq, __ATOMIC_RELAXED);
	if (seq & 1)
		seq++; /* a writer died half way: this write completes it */
	__atomic_store_n(&t->hdr.seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	t->hdr.magic = h.magic;
	t->hdr.version = h.version;
	t->hdr.n = h.n;
	t->hdr.lens4 = h.lens4;
	memcpy(t->hdr.lens6, h.lens6, sizeof(h.lens6));
	memcpy(t->hdr.first4, h.first4, sizeof(h.first4));
	memcpy(t->hdr.first6, h.first6, sizeof(h.first6));
	memcpy(t->e, e, n * sizeof(*e));
	__atomic_store_n(&t->hdr.seq, seq + 2, __ATOMIC_RELEASE);
	free(e);
	return 0;
}

/* Whether (family, len, a masked to len) is an entry of e[0..n). */
static bool find(const struct dv_rangetab_entry *e, uint32_t n, const struct dv_addr *a, unsigned len)
{
	struct dv_rangetab_entry k = {.family = a->family, .len = (uint8_t)len};
	size_t lo = 0, hi = n;

	if (len > dv_addr_maxlen(a))
		return false; /* a torn read: the seq check retries */
	memcpy(k.bytes, a->bytes, len / 8);
	if (len % 8)
		k.bytes[len / 8] = (uint8_t)(a->bytes[len / 8] & (0xff00u >> (len % 8)));
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = entry_cmp(&e[mid], &k);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int dv_rangetab_lookup(const struct dv_rangetab *t, const struct dv_addr *a)
{
	/* A writer that is preempted holds readers up; after a few tries
	 * the caller does without the table. */
	for (int tries = 0; tries < 64; tries++) {
		uint32_t s1 = __atomic_load_n(&t->hdr.seq, __ATOMIC_ACQUIRE), s2, n;
		const uint64_t *first;
		bool hit = false;

		if (s1 & 1)
			continue;
		if (t->hdr.magic != DV_RANGETAB_MAGIC || t->hdr.version != DV_RANGETAB_VERSION)
			return -EBADMSG;
		n = t->hdr.n;
		if (n > DV_RANGETAB_MAX)
			n = DV_RANGETAB_MAX; /* torn: the seq check below retries */
		first = a->family == AF_INET ? t->hdr.first4 : t->hdr.first6;
		if (!(first[a->bytes[0] / 64] >> (a->bytes[0] % 64) & 1))
			n = 0; /* no entry starts with its first byte */
		/* One binary search per prefix length in use. */
		for (unsigned w = 0; w < (a->family == AF_INET ? 1u : 3u) && !hit && n; w++) {
			uint64_t bits = a->family == AF_INET ? t->hdr.lens4 : t->hdr.lens6[w];

			for (; bits && !hit; bits &= bits - 1)
				hit = find(t->e, n, a, w * 64 + (unsigned)__builtin_ctzll(bits));
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&t->hdr.seq, __ATOMIC_RELAXED);
		if (s1 == s2)
			return hit;
	}
	return -EAGAIN;
}
