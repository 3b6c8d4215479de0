/*
 * report_key.c - a report key from a file (report_key.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qsteer/report_key.h"
#include "qsteer/status.h"

int
qs_report_key_load(const char *path, struct qs_report_key *k, char *msg, size_t msglen)
{
	char buf[129];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(msg, msglen, "report key %s: %s", path, strerror(errno));
		return QS_E_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(msg, msglen, "report key %s: not a regular file", path);
		close(fd);
		return QS_E_VALUE;
	}
	/* like ssh with its private keys: a secret others can read is not one */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(msg, msglen,
			 "report key %s: readable or writable by group or others (mode %03o); "
			 "chmod 600 it",
			 path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return QS_E_VALUE;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(msg, msglen, "report key %s: %s", path, strerror(errno));
		return QS_E_IO;
	}
	buf[n] = 0;
	memset(k, 0, sizeof(*k));
	if (qs_report_key_hex(buf, k) != 0) {
		snprintf(msg, msglen,
			 "report key %s: not a key (32 hex digits, not all zero, nothing else)",
			 path);
		return QS_E_VALUE;
	}
	return QS_OK;
}
