/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's clocks: monotonic for timeouts and pacing, wall clock
 * (milliseconds since the epoch) for the "since" of events, and the
 * thread's CPU time for what a piece of work costs. */
#pragma once

#include <stdint.h>
#include <time.h>

static inline uint64_t dv_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline uint64_t dv_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* CPU time of the calling thread, user and system (the kernel's work in
 * our system calls included). */
static inline uint64_t dv_thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
