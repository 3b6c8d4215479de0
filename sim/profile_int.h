/*
 * profile_int.h - libqsteer-profile's private interface, shared with the scenario
 * loader: typed key tables for INI sections, strict number parsing, whole-file
 * reads. Nothing of the simulator: the agent links this library without it.
 */
#ifndef QSTEER_SIM_PROFILE_INT_H
#define QSTEER_SIM_PROFILE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qsteer/profile.h"

enum qs_sim_key_type { QS_KEY_DOUBLE, QS_KEY_U32, QS_KEY_BOOL, QS_KEY_MODEL, QS_KEY_STR };

struct qs_sim_key {
	const char *name;
	enum qs_sim_key_type type;
	size_t off;
};

int qs_sim_parse_double(const char *v, double *out);
int qs_sim_parse_u64(const char *v, uint64_t *out);
int qs_sim_parse_bool(const char *v, bool *out);
int qs_sim_set_key(const struct qs_sim_key *keys, void *base, const char *name, const char *value,
		   char *err, size_t errlen);
int qs_sim_profile_key(struct qs_sim_profile *p, const char *name, const char *value, char *err,
		       size_t errlen);
/* Read a whole (small, text) file; the caller frees *out. */
int qs_sim_read_file(const char *path, char **out, char *msg, size_t msglen);

#endif /* QSTEER_SIM_PROFILE_INT_H */
