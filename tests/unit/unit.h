/*
 * unit.h - what every Check suite's main() shares: run the suite, print
 * Check's summary line (tests/run.sh counts it), exit non-zero on a failure.
 */
#ifndef DOTPROXY_UNIT_H
#define DOTPROXY_UNIT_H

#include <check.h>
#include <stdlib.h>

static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
