/*
 * privs.h - least privilege once setup is done: the user the daemon runs as,
 * the capabilities it keeps, no_new_privs and a seccomp allow-list. Called
 * once, after every socket is open; nothing it does can be undone.
 */
#ifndef DOTPROXY_PRIVS_H
#define DOTPROXY_PRIVS_H

#include <stddef.h>

#include "config.h"

/*
 * Switch to cfg->user ("": dotproxy if that user exists, else nobody; when
 * not started as root and no --user is given, the current user stays), keep
 * only the capabilities cfg->mode still uses at run time (permitted and
 * effective; inheritable and ambient empty; the bounding set cut down to
 * them when started with CAP_SETPCAP, as root is), set no_new_privs and
 * install the seccomp allow-list. Logs one line on success. Call it while
 * the process has one thread: capabilities are per thread. Returns 0, or -1
 * with one line in @err: the caller must then exit, since the process may be
 * half-way through.
 */
int privs_drop(const struct config *cfg, char *err, size_t errlen);

#endif
