/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging of the daemon. Only the daemon's edges log (main, daemon,
 * control): library-style modules return errors instead. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/* foreground: to stderr; otherwise to syslog (the journal under systemd). */
void log_init(const char *ident, bool foreground, bool debug);
void dv_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One cause, at most one line per interval: a flood of one event (refused
 * connections, say) must not flood the log. */
struct dv_ratelimit {
	uint64_t last_us;
	unsigned held; /* lines held back since the last one */
};
void dv_log_limited(struct dv_ratelimit *rl, unsigned interval_s, int prio, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_err(...) dv_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) dv_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) dv_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) dv_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) dv_log(LOG_DEBUG, __VA_ARGS__)
