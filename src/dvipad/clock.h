/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's two clocks: monotonic for timeouts and pacing, wall clock
 * (milliseconds since the epoch) for the "since" of events. */
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
