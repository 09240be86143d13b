/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A fresh "is this partition quorate?" that never blocks the daemon for
 * long.
 *
 * quorum_getquorate() waits for Corosync's answer without a timeout
 * (CS_IPC_TIMEOUT_MS is -1), and Corosync holds client requests back while
 * its ring is forming: a 5-node fault campaign saw every dvipad stuck in it
 * for 30 s, its timers (the ring lease among them) silent, after a ring
 * that kept re-forming. So the question goes to a thread with a quorum
 * connection of its own, and the daemon waits for the answer only up to a
 * bound; no answer counts as "not quorate" (the safe side: addresses go
 * down, nothing is granted) until Corosync's own notification says
 * otherwise.
 */
#pragma once

#include <stdint.h>

struct dv_qprobe;

/* Starts the thread; NULL with errno set on failure. */
struct dv_qprobe *dv_qprobe_new(void);

/* 1 quorate, 0 not, -ETIMEDOUT when Corosync did not answer within
 * timeout_us (or still owes the answer to an earlier question), -EIO when
 * it could not be asked. */
int dv_qprobe_ask(struct dv_qprobe *p, uint64_t timeout_us);

/* Readable when an answer came after dv_qprobe_ask() stopped waiting. */
int dv_qprobe_fd(const struct dv_qprobe *p);

/* That late answer to the latest question (1 or 0), or -EAGAIN when there
 * is none (answers to older questions are dropped). */
int dv_qprobe_late(struct dv_qprobe *p);

/* The thread ends on its own once Corosync answers or goes; NULL. */
struct dv_qprobe *dv_qprobe_free(struct dv_qprobe *p);
