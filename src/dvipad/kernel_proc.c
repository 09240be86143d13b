/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Processes and the sockets they own, from /proc (kernel.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "kernel.h"

/* Deep enough for any real process tree; bounds a loop on a broken one. */
#define MAX_DEPTH 128

/* The state letter and parent of pid from /proc/PID/stat. 0 or -errno. */
static int proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid)
{
	char path[64], buf[512], *p;
	_cleanup_close_ int fd = -1;
	ssize_t n;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = 0;
	/* The command may hold spaces and parentheses: the last ')' ends it. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %d", ret_state, &ppid) != 2)
		return -EBADMSG;
	*ret_ppid = ppid;
	return 0;
}

bool dv_proc_alive(pid_t pid)
{
	char state;
	pid_t ppid;

	return pid > 0 && proc_stat(pid, &state, &ppid) == 0 && state != 'Z' && state != 'X';
}

bool dv_proc_descends(pid_t pid, pid_t ancestor)
{
	for (int i = 0; i < MAX_DEPTH && pid > 1; i++) {
		char state;

		if (pid == ancestor)
			return true;
		if (proc_stat(pid, &state, &pid) < 0)
			return false;
	}
	return pid == ancestor;
}

static bool in_set(uint32_t ino, const uint32_t *inodes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (inodes[i] == ino)
			return true;
	return false;
}

bool dv_proc_owns_socket(pid_t pid, const uint32_t *inodes, size_t n)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char link[64];
		unsigned long ino;
		ssize_t k;

		if (de->d_name[0] == '.')
			continue;
		k = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = 0;
		if (sscanf(link, "socket:[%lu]", &ino) == 1 && ino <= UINT32_MAX)
			found = in_set((uint32_t)ino, inodes, n);
	}
	closedir(d);
	return found;
}

pid_t dv_proc_socket_owner(const uint32_t *inodes, size_t n, pid_t except)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t owner = 0;

	if (!d)
		return 0;
	while (!owner && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid > INT_MAX || pid == except || pid == getpid())
			continue;
		if (dv_proc_owns_socket((pid_t)pid, inodes, n))
			owner = (pid_t)pid;
	}
	closedir(d);
	return owner;
}

const char *dv_proc_comm(pid_t pid, char *buf, size_t size)
{
	char path[64];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(buf, size, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return buf;
	n = read(fd, buf, size - 1);
	if (n <= 0) {
		snprintf(buf, size, "?");
		return buf;
	}
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}
