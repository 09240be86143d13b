/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging of the daemon. Only the daemon's edges log (main, daemon,
 * control): library-style modules return errors instead. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

/* foreground: to stderr; otherwise to syslog (the journal under systemd). */
void log_init(const char *ident, bool foreground, bool debug);
void dv_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) dv_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) dv_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) dv_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) dv_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) dv_log(LOG_DEBUG, __VA_ARGS__)
