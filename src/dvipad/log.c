/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging to stderr in the foreground, to syslog otherwise: the one place dvipad writes its log. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"

static bool log_foreground = true;
static bool log_verbose;
static const char *log_ident = "dvipad";

void log_init(const char *ident, bool foreground, bool debug)
{
	log_ident = ident;
	log_foreground = foreground;
	log_verbose = debug;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

static void vlog(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

void dv_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, fmt, ap);
	va_end(ap);
}

void dv_log_limited(struct dv_ratelimit *rl, unsigned interval_s, int prio, const char *fmt, ...)
{
	uint64_t now = dv_mono_us();
	char line[512];
	va_list ap;

	if (rl->last_us && now - rl->last_us < (uint64_t)interval_s * 1000000) {
		rl->held++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (rl->held)
		dv_log(prio, "%s (and %u more like it in the last %u s)", line, rl->held, interval_s);
	else
		dv_log(prio, "%s", line);
	rl->last_us = now;
	rl->held = 0;
}

static void vlog(int prio, const char *fmt, va_list ap)
{
	static const char *const names[] = {"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"};

	if (prio == LOG_DEBUG && !log_verbose)
		return;
	if (log_foreground) {
		struct timespec ts;
		struct tm tm;
		char when[32], line[1024];
		va_list aq;
		int n, m;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		/* One write per line (stderr is unbuffered: a write per call),
		 * whole even if others write there too; three for a long one. */
		n = snprintf(line, sizeof(line), "%s.%03ld %s: %s: ", when, ts.tv_nsec / 1000000, log_ident,
			     names[prio & 7]);
		va_copy(aq, ap);
		m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, aq);
		va_end(aq);
		if (m >= 0 && (size_t)n + (size_t)m + 1 < sizeof(line)) {
			line[n + m] = '\n';
			fwrite(line, 1, (size_t)n + (size_t)m + 1, stderr);
			return;
		}
		line[n] = '\0';
		fputs(line, stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(prio, fmt, ap);
	}
}
