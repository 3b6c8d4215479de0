/*
 * sim_profile.h - what scenario.c includes: the simulator's internals and the
 * profile library's key tables (profile_int.h), which its [backend.*] sections
 * share to override any profile key after naming the profile.
 */
#ifndef QSTEER_SIM_PROFILE_H
#define QSTEER_SIM_PROFILE_H

#include "profile_int.h"
#include "sim_internal.h"

#endif /* QSTEER_SIM_PROFILE_H */
