/* version.h - the release version, printed by --version and in metrics. */
#ifndef DOTPROXY_VERSION_H
#define DOTPROXY_VERSION_H
#define DOTPROXY_VERSION "0.1.0"
#endif
