/*
 * report_key.h - reading a per-backend report key (report_auth.h) from a file, for
 * the programs that sign reports (qsteer-agent) and those that check them
 * (qsteer-dp, qsteer-xdp). Host code, in libqsteer-policy beside the policy keys.
 */
#ifndef QSTEER_REPORT_KEY_H
#define QSTEER_REPORT_KEY_H

#include <stddef.h>

#include "report_auth.h"

/*
 * Read a key file: 32 hex digits, blanks and a newline around them allowed. A file
 * that others may read is refused too (the key is a shared secret). Returns 0, or
 * QS_E_IO / QS_E_VALUE with msg saying what and which file; msg never holds the key.
 */
int qs_report_key_load(const char *path, struct qs_report_key *k, char *msg, size_t msglen);

#endif /* QSTEER_REPORT_KEY_H */
