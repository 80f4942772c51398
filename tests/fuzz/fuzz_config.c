/*
 * fuzz_config.c - libFuzzer target for the settings parser in src/config.c:
 * a config file and DOTPROXY_* variables, read together by config_load() as
 * the daemon reads them at start and on SIGHUP.
 *
 * Input: the file's bytes, then a NUL, then environment lines separated by
 * '\n' ("DOTPROXY_" is put in front of each). The file is written to a
 * temporary file once per input. Whatever the bytes, the parse must end in
 * 0 or -1 with every error line NUL-terminated and free of newlines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define MAX_ENV		16
#define MAX_LINE	300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[] = "/tmp/fuzz_config.XXXXXX";
static int fd = -1;

static void remove_file(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config c;
	static struct cfg_report r;
	char envbuf[MAX_ENV][MAX_LINE + 16];
	char *envp[MAX_ENV + 1];
	char *argv[] = { "dotproxy", "--config", path, NULL };
	const uint8_t *nul = memchr(data, 0, size);
	size_t flen = nul ? (size_t)(nul - data) : size;
	int n = 0, rc;

	if (fd < 0) {
		if ((fd = mkstemp(path)) < 0)
			abort();
		atexit(remove_file);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, flen, 0) != (ssize_t)flen)
		abort();
	if (nul) {
		const uint8_t *p = nul + 1, *end = data + size;

		while (p < end && n < MAX_ENV) {
			const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
			size_t l = (size_t)((nl ? nl : end) - p);

			if (l > MAX_LINE)
				l = MAX_LINE;
			memcpy(envbuf[n], "DOTPROXY_", 9);
			memcpy(envbuf[n] + 9, p, l);
			envbuf[n][9 + l] = '\0';	/* a NUL inside ends the line early, as in a real environ */
			envp[n] = envbuf[n];
			n++;
			p = nl ? nl + 1 : end;
		}
	}
	envp[n] = NULL;
	rc = config_load(&c, 3, argv, envp, &r);
	if (rc != 0 && rc != -1)
		abort();
	for (int i = 0; i < r.n && i < CFG_MAX_ERRORS; i++)
		if (!memchr(r.msg[i], '\0', sizeof(r.msg[i])) || strchr(r.msg[i], '\n'))
			abort();
	if (rc == 0 && (c.nupstreams < 1 || c.nupstreams > CFG_MAX_UPSTREAMS || c.nlisten > CFG_MAX_LISTEN))
		abort();
	return 0;
}
