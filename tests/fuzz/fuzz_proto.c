/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the control protocol: what dvipad and the clients
 * do with a datagram from a peer. Parse it, decode it both as a request and
 * as a reply, and decode every attribute with every typed decoder,
 * whatever its type claims: a decoder must reject, never overrun.
 *
 * Build with -Dfuzz=true (clang); run: ./fuzz_proto -max_len=65600 corpus/
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch every byte of a decoded string so ASan sees any overrun. */
static size_t touch(const char *s)
{
	return s ? strlen(s) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dv_attr_iter it;
	struct dv_request req;
	struct dv_reply rep;
	struct dv_msg m;
	const char *why;
	const void *v;
	uint16_t type;
	size_t n, sum = 0;
	uint8_t *copy;

	/* A private copy of exactly size bytes: reads past the datagram are
	 * caught even when libFuzzer's buffer is larger. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);

	if (dv_msg_parse(copy, size, &m) < 0)
		goto out;

	if (dv_request_decode(&m, &req, &why) < 0) {
		if (!why)
			abort(); /* a refusal always names its reason */
		sum += touch(why);
	}
	if (dv_reply_decode(&m, &rep) == 0) {
		if (memchr(rep.reason, 0, sizeof(rep.reason)) == NULL)
			abort();
		sum += touch(rep.reason);
	}

	dv_attr_iter_init(&it, &m);
	while (dv_attr_next(&it, &type, &v, &n)) {
		const char *s, *key, *str;
		struct dv_addr a;
		uint32_t u32;
		uint64_t u64;
		uint8_t ft;
		bool b;

		if ((const uint8_t *)v < copy || (const uint8_t *)v + n > copy + size)
			abort();
		if (dv_val_u32(v, n, &u32) == 0)
			sum += u32;
		if (dv_val_str(v, n, &s) == 0)
			sum += touch(s);
		if (dv_val_addr(v, n, &a) == 0)
			sum += a.family;
		if (dv_val_field(v, n, &ft, &key, &str, &u64, &b) == 0) {
			sum += touch(key);
			if (ft == DV_F_STR)
				sum += touch(str);
			else if (ft == DV_F_U64)
				sum += (size_t)u64;
			else
				sum += b;
		}
	}

out:
	free(copy);
	/* keep the work observable */
	__asm__ volatile("" : : "r"(sum));
	return 0;
}
