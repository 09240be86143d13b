/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for the configuration parser: any text must parse or fail
 * cleanly, and what parses must print and parse back to the same text.
 *
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined
 *   ninja -C build-fuzz fuzz_conf && ./build-fuzz/tests/fuzz_conf -max_len=8192 CORPUS tests/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dv_conf *c = NULL, *c2 = NULL;
	char *out = NULL, *out2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *null, *f;
	unsigned n;

	null = fopen("/dev/null", "w");
	if (!null)
		abort();
	if (dv_conf_parse_string("fuzz.conf", (const char *)data, size, null, &c, &n) < 0) {
		fclose(null);
		return 0;
	}

	f = open_memstream(&out, &len);
	if (!f)
		abort();
	dv_conf_print(c, f);
	fclose(f);

	/* The normalized form is a fixed point. */
	if (dv_conf_parse_string("fuzz.conf", out, len, null, &c2, &n) < 0)
		abort();
	f = open_memstream(&out2, &len2);
	if (!f)
		abort();
	dv_conf_print(c2, f);
	fclose(f);
	if (len != len2 || memcmp(out, out2, len) != 0)
		abort();

	fclose(null);
	free(out);
	free(out2);
	dv_conf_free(c);
	dv_conf_free(c2);
	return 0;
}
