/*
 * check_metrics.c - the counters as Prometheus text (every metric of the
 * README's table with its HELP and TYPE, values from the struct, each page
 * checked line by line: names, labels, values, whole histograms), the rcode
 * and address family labels, the latency histogram's buckets, the growable
 * text buffer, and the HTTP endpoint over loopback:
 * /metrics, /health, 404, 405, the idle-client timeout and the client cap.
 * Every loop run is bounded by a stop timer; clients are non-blocking.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "metrics.h"
#include "sock.h"
#include "unit.h"

/* ---- parsing the Prometheus text ---- */

#define MAX_FAMILIES	64
#define MAX_SERIES	256

struct family {
	char name[96];
	char type[16];
	bool help;
};

struct series {
	char key[160];		/* name{labels} */
	char value[32];
};

struct page {
	struct family fam[MAX_FAMILIES];
	int nfam;
	struct series ser[MAX_SERIES];
	int nser;
	/* the histogram being read: its buckets, then _sum, then _count */
	char hist[160];		/* family name{labels but le}; "" between histograms */
	double last_le;
	unsigned long long last_bucket;
	bool inf, sum;
};

static struct family *family_of(struct page *p, const char *name, size_t len)
{
	for (int i = 0; i < p->nfam; i++)
		if (strlen(p->fam[i].name) == len && !strncmp(p->fam[i].name, name, len))
			return &p->fam[i];
	return NULL;
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* @len bytes at @s are a metric or label name. */
static bool valid_name(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i], i == 0))
			return false;
	return true;
}

/*
 * Check the label set between @s and @end ('{' ... '}', both included):
 * name="value" pairs, comma separated, values without raw quotes, newlines
 * or backslashes. Returns where le="..." starts (NULL: none) and its value.
 */
static const char *check_labels(const char *s, const char *end, char *le, size_t lelen)
{
	const char *p = s + 1, *le_at = NULL;

	ck_assert(*s == '{' && *end == '}');
	while (p < end) {
		const char *eq = memchr(p, '=', (size_t)(end - p)), *q;

		ck_assert_msg(eq && valid_name(p, (size_t)(eq - p)), "bad label name in %.*s", (int)(end - s + 1), s);
		ck_assert_msg(eq[1] == '"', "label value not quoted in %.*s", (int)(end - s + 1), s);
		for (q = eq + 2; q < end && *q != '"'; q++)
			ck_assert_msg(*q != '\\' && *q != '\n', "unescaped character in %.*s", (int)(end - s + 1), s);
		ck_assert_msg(q < end, "label value not closed in %.*s", (int)(end - s + 1), s);
		if (eq - p == 2 && !strncmp(p, "le", 2)) {
			le_at = p;
			ck_assert_uint_lt((size_t)(q - eq - 2), lelen);
			memcpy(le, eq + 2, (size_t)(q - eq - 2));
			le[q - eq - 2] = '\0';
		}
		p = q + 1;
		ck_assert_msg(p == end || *p == ',', "labels not comma separated: %.*s", (int)(end - s + 1), s);
		if (p < end)
			p++;
	}
	return le_at;
}

/* A sample's value: a number (integer or decimal), +Inf, -Inf or NaN. */
static double sample_value(const char *v)
{
	char *end;
	double d;

	if (!strcmp(v, "+Inf"))
		return 1.0 / 0.0;
	ck_assert_msg(strcmp(v, "NaN") && strcmp(v, "-Inf"), "counter or bucket value %s", v);
	d = strtod(v, &end);
	ck_assert_msg(end != v && *end == '\0', "bad sample value \"%s\"", v);
	return d;
}

/*
 * One sample of histogram family @f: buckets in ascending le with cumulative
 * counts, ending with le="+Inf", then _sum, then _count equal to the +Inf
 * bucket. @suffix is what follows the family name; @labels its label set.
 */
static void histogram_sample(struct page *p, const struct family *f, const char *suffix,
			     const char *labels, size_t lablen, const char *value)
{
	char group[160], le[32];
	const char *le_at;
	unsigned long long v = strtoull(value, NULL, 10);

	ck_assert_msg(lablen >= 2, "histogram sample without labels: %s%s", f->name, suffix);
	le_at = check_labels(labels, labels + lablen - 1, le, sizeof(le));
	if (!strncmp(suffix, "_bucket", 7)) {
		double bound;

		ck_assert_msg(le_at != NULL, "bucket without le: %s", labels);
		/* le is the last label: the group is the family and the labels before it */
		ck_assert_msg(le_at + 4 + strlen(le) + 1 == labels + lablen - 1, "le is not the last label: %s", labels);
		snprintf(group, sizeof(group), "%s{%.*s}", f->name,
			 (int)(le_at - labels - 1 - (le_at - labels > 1 ? 1 : 0)), labels + 1);
		bound = !strcmp(le, "+Inf") ? 1.0 / 0.0 : sample_value(le);
		if (strcmp(group, p->hist)) {
			ck_assert_msg(!p->hist[0], "histogram %s ends without its _count", p->hist);
			snprintf(p->hist, sizeof(p->hist), "%s", group);
			p->last_le = -1;
			p->last_bucket = 0;
			p->inf = p->sum = false;
		}
		ck_assert_msg(!p->inf, "bucket after le=\"+Inf\" in %s", group);
		ck_assert_msg(bound > p->last_le, "le not ascending in %s: %s", group, le);
		ck_assert_msg(v >= p->last_bucket, "buckets not cumulative in %s: le=%s %llu < %llu", group, le,
			      v, p->last_bucket);
		p->last_le = bound;
		p->last_bucket = v;
		p->inf = !strcmp(le, "+Inf");
		return;
	}
	ck_assert_msg(le_at == NULL, "le on %s%s", f->name, suffix);
	snprintf(group, sizeof(group), "%s%.*s", f->name, (int)lablen, labels);
	ck_assert_msg(!strcmp(group, p->hist), "%s%s outside its histogram (%s)", f->name, suffix, p->hist);
	ck_assert_msg(p->inf, "histogram %s has no le=\"+Inf\" bucket", group);
	if (!strcmp(suffix, "_sum")) {
		ck_assert_msg(!p->sum, "two _sum for %s", group);
		ck_assert_msg(sample_value(value) >= 0, "negative _sum for %s", group);
		p->sum = true;
		return;
	}
	ck_assert_str_eq(suffix, "_count");
	ck_assert_msg(p->sum, "_count before _sum for %s", group);
	ck_assert_msg(v == p->last_bucket, "%s_count %llu, but its +Inf bucket says %llu", group, v, p->last_bucket);
	p->hist[0] = '\0';
}

/*
 * Parse @text: every sample's family must have had its HELP and TYPE lines
 * before it, each only once; names, labels and values must be valid; no
 * series may repeat; histograms must be whole (histogram_sample()).
 */
static void parse_page(const char *text, struct page *p)
{
	const char *line = text;

	memset(p, 0, sizeof(*p));
	ck_assert_msg(*text && text[strlen(text) - 1] == '\n', "page does not end in a newline");
	while (*line) {
		const char *eol = strchr(line, '\n');
		size_t len = (size_t)(eol - line);

		ck_assert_ptr_nonnull(eol);
		ck_assert_msg(len > 0, "empty line in the page");
		if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
			const char *name = line + 7, *sp = memchr(name, ' ', (size_t)(eol - name));
			struct family *f;

			ck_assert_msg(sp && sp + 1 < eol, "bad comment line: %.*s", (int)len, line);
			ck_assert_msg(valid_name(name, (size_t)(sp - name)), "bad name: %.*s", (int)len, line);
			f = family_of(p, name, (size_t)(sp - name));
			if (!f) {
				ck_assert_int_lt(p->nfam, MAX_FAMILIES);
				f = &p->fam[p->nfam++];
				ck_assert_uint_lt((size_t)(sp - name), sizeof(f->name));
				memcpy(f->name, name, (size_t)(sp - name));
			}
			if (line[2] == 'H') {
				ck_assert_msg(!f->help, "two HELP lines for %s", f->name);
				f->help = true;
			} else {
				ck_assert_msg(!f->type[0], "two TYPE lines for %s", f->name);
				ck_assert_msg(f->help, "TYPE before HELP for %s", f->name);
				ck_assert_uint_lt((size_t)(eol - sp - 1), sizeof(f->type));
				memcpy(f->type, sp + 1, (size_t)(eol - sp - 1));
				ck_assert_msg(!strcmp(f->type, "counter") || !strcmp(f->type, "gauge") ||
					      !strcmp(f->type, "histogram"), "type %s of %s", f->type, f->name);
			}
		} else {
			const char *sp = line + len, *brace;
			size_t nlen = strcspn(line, "{ ");
			struct family *f = family_of(p, line, nlen);
			const char *suffix = "";
			struct series *s;

			ck_assert_msg(line[0] != '#', "unknown comment: %.*s", (int)len, line);
			ck_assert_msg(valid_name(line, nlen), "bad metric name: %.*s", (int)len, line);
			if (!f) {
				/* a histogram's _bucket, _sum or _count */
				static const char *const sfx[] = { "_bucket", "_sum", "_count" };

				for (int i = 0; i < 3 && !f; i++) {
					size_t sl = strlen(sfx[i]);

					if (nlen > sl && !strncmp(line + nlen - sl, sfx[i], sl) &&
					    (f = family_of(p, line, nlen - sl)) != NULL) {
						suffix = sfx[i];
						ck_assert_msg(!strcmp(f->type, "histogram"), "%.*s: %s of a %s", (int)nlen,
							      line, sfx[i], f->type);
					}
				}
			}
			while (sp > line && sp[-1] != ' ')
				sp--;
			ck_assert_msg(sp > line + 1, "sample without a value: %.*s", (int)len, line);
			ck_assert_msg(f && f->help && f->type[0], "sample before its HELP and TYPE: %.*s", (int)len, line);
			ck_assert_msg(sp - 1 == line + nlen || (line[nlen] == '{' && sp[-2] == '}'),
				      "bad sample line: %.*s", (int)len, line);
			brace = line[nlen] == '{' ? line + nlen : NULL;
			for (int i = 0; i < p->nser; i++)
				ck_assert_msg(strlen(p->ser[i].key) != (size_t)(sp - 1 - line) ||
					      strncmp(p->ser[i].key, line, (size_t)(sp - 1 - line)),
					      "series twice: %.*s", (int)len, line);
			ck_assert_int_lt(p->nser, MAX_SERIES);
			s = &p->ser[p->nser++];
			ck_assert_uint_lt((size_t)(sp - 1 - line), sizeof(s->key));
			ck_assert_uint_lt((size_t)(eol - sp), sizeof(s->value));
			memcpy(s->key, line, (size_t)(sp - 1 - line));
			memcpy(s->value, sp, (size_t)(eol - sp));
			if (!strcmp(f->type, "histogram")) {
				ck_assert_msg(*suffix, "histogram sample without a suffix: %s", s->key);
				histogram_sample(p, f, suffix, brace ? brace : "", brace ? (size_t)(sp - 1 - brace) : 0,
						 s->value);
			} else {
				char le[32];

				ck_assert_msg(p->hist[0] == '\0', "histogram %s ends without its _count", p->hist);
				if (brace)
					ck_assert_msg(!check_labels(brace, sp - 2, le, sizeof(le)), "le on %s", s->key);
				ck_assert_msg(sample_value(s->value) >= 0 || !strcmp(f->type, "gauge"),
					      "negative counter %s", s->key);
			}
		}
		line = eol + 1;
	}
	ck_assert_msg(p->hist[0] == '\0', "histogram %s ends without its _count", p->hist);
}

static const struct series *series_of(const struct page *p, const char *key)
{
	for (int i = 0; i < p->nser; i++)
		if (!strcmp(p->ser[i].key, key))
			return &p->ser[i];
	return NULL;
}

/* The series @key exists, with value @v, in a family of type @type. */
static void expect(struct page *p, const char *key, const char *type, unsigned long long v)
{
	const struct series *s = series_of(p, key);
	size_t nlen = strcspn(key, "{");
	struct family *f = family_of(p, key, nlen);
	char want[32];

	/* a histogram's sample: its family's name without the suffix */
	for (size_t sl = 4; !f && sl <= 7; sl++)
		if (nlen > sl && (!strncmp(key + nlen - sl, "_sum", sl) || !strncmp(key + nlen - sl, "_count", sl) ||
				  !strncmp(key + nlen - sl, "_bucket", sl)))
			f = family_of(p, key, nlen - sl);

	ck_assert_msg(s != NULL, "no series %s", key);
	ck_assert_msg(f != NULL, "no family for %s", key);
	ck_assert_str_eq(f->type, type);
	snprintf(want, sizeof(want), "%llu", v);
	ck_assert_msg(!strcmp(s->value, want), "%s is %s, want %s", key, s->value, want);
}

/* The same for a sample whose value is text (a histogram's _sum). */
static void expect_text(struct page *p, const char *key, const char *v)
{
	const struct series *s = series_of(p, key);

	ck_assert_msg(s != NULL, "no series %s", key);
	ck_assert_msg(!strcmp(s->value, v), "%s is %s, want %s", key, s->value, v);
}

static char *render(const struct metrics *m)
{
	struct strbuf sb = { 0 };

	metrics_render(m, &sb);
	ck_assert_int_eq(sb.err, 0);
	ck_assert_ptr_nonnull(sb.buf);
	ck_assert_uint_eq(strlen(sb.buf), sb.len);
	return sb.buf;
}

static const char *const fe_names[MF_COUNT] = { "tproxy", "redirect", "nfqueue" };
static const char *const tr_names[MT_COUNT] = { "udp", "tcp" };
static const char *const fam_names[MFAM_COUNT] = { "ipv4", "ipv6" };
static const char *const rc_names[MR_COUNT] = { "NOERROR", "SERVFAIL", "FORMERR", "REFUSED", "NXDOMAIN", "other" };

/* A distinct number for each path counter: queries 1FTA, answers 2FTAR (F, T, A, R from 1). */
static unsigned long long path_value(int f, int t, int a, int r)
{
	return r < 0 ? 1000 + 100 * (unsigned)(f + 1) + 10 * (unsigned)(t + 1) + (unsigned)(a + 1)
		     : 20000 + 1000 * (unsigned)(f + 1) + 100 * (unsigned)(t + 1) + 10 * (unsigned)(a + 1) +
			       (unsigned)(r + 1);
}

/* Every field a distinct number; some past 32 bits. Paths: tproxy UDP and TCP, nfqueue UDP. */
static void distinct(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->path[MF_TPROXY][MT_UDP].used = true;
	m->path[MF_TPROXY][MT_TCP].used = true;
	m->path[MF_NFQUEUE][MT_UDP].used = true;
	for (int f = 0; f < MF_COUNT; f++)
		for (int t = 0; t < MT_COUNT; t++)
			for (int a = 0; a < MFAM_COUNT; a++) {
				m->path[f][t].queries[a] = path_value(f, t, a, -1);
				for (int r = 0; r < MR_COUNT; r++)
					m->path[f][t].answers[a][r] = path_value(f, t, a, r);
			}
	m->queries[MT_UDP] = 101;	/* the totals are not on the page */
	m->queries[MT_TCP] = 102;
	m->answers[MR_NOERROR] = 201;
	m->malformed = 301;
	m->truncated = 302;
	m->handshakes = 303;		/* per upstream: pool_render's */
	m->resumed = 304;
	m->tls_failures = 305;
	m->upstream_queries = 306;
	m->upstream_bad_answers = 12345678901234ULL;
	m->timeouts = 308;
	m->refused_inflight = 309;
	m->refused_tcp = 310;
	m->send_errors = 18446744073709551615ULL;
	m->inflight = 312;
	m->hedged = 313;
	m->cache_hits = 314;
	m->cache_misses = 315;
	m->stale_answers = 316;
	m->prefetches = 317;
	m->deduplicated = 318;
	m->ratelimited = 319;
	m->no_upstream = 320;
	m->tries_exhausted = 321;
}

START_TEST(render_has_every_metric_with_its_value)
{
	struct metrics m;
	struct page *p = calloc(1, sizeof(*p));
	char *text, key[160];
	int refused = 0, paths = 0;

	ck_assert_ptr_nonnull(p);
	distinct(&m);
	text = render(&m);
	parse_page(text, p);
	/* queries and answers: every label combination of the paths in use, and only those */
	for (int f = 0; f < MF_COUNT; f++)
		for (int t = 0; t < MT_COUNT; t++) {
			if (!m.path[f][t].used)
				continue;
			paths++;
			for (int a = 0; a < MFAM_COUNT; a++) {
				snprintf(key, sizeof(key), "dotproxy_queries_total{frontend=\"%s\",transport=\"%s\",family=\"%s\"}",
					 fe_names[f], tr_names[t], fam_names[a]);
				expect(p, key, "counter", path_value(f, t, a, -1));
				for (int r = 0; r < MR_COUNT; r++) {
					snprintf(key, sizeof(key), "dotproxy_answers_total{frontend=\"%s\",transport=\"%s\","
						 "family=\"%s\",rcode=\"%s\"}", fe_names[f], tr_names[t], fam_names[a], rc_names[r]);
					expect(p, key, "counter", path_value(f, t, a, r));
				}
			}
		}
	ck_assert_int_eq(paths, 3);
	ck_assert_ptr_null(strstr(text, "frontend=\"redirect\""));
	ck_assert_ptr_null(strstr(text, "frontend=\"nfqueue\",transport=\"tcp\""));
	/* the README's table */
	expect(p, "dotproxy_malformed_total", "counter", 301);
	expect(p, "dotproxy_truncated_total", "counter", 302);
	expect(p, "dotproxy_tls_failures_total", "counter", 305);
	expect(p, "dotproxy_upstream_bad_answers_total", "counter", 12345678901234ULL);
	expect(p, "dotproxy_timeouts_total", "counter", 308);
	expect(p, "dotproxy_send_errors_total", "counter", 18446744073709551615ULL);
	expect(p, "dotproxy_inflight", "gauge", 312);
	expect(p, "dotproxy_hedged_total", "counter", 313);
	expect(p, "dotproxy_cache_hits_total", "counter", 314);
	expect(p, "dotproxy_cache_misses_total", "counter", 315);
	expect(p, "dotproxy_stale_answers_total", "counter", 316);
	expect(p, "dotproxy_prefetches_total", "counter", 317);
	expect(p, "dotproxy_deduplicated_total", "counter", 318);
	expect(p, "dotproxy_ratelimited_total", "counter", 319);
	expect(p, "dotproxy_no_upstream_total", "counter", 320);
	expect(p, "dotproxy_tries_exhausted_total", "counter", 321);
	/* refused{reason}: one series per cap, whatever the label spells */
	for (int i = 0; i < p->nser; i++) {
		const char *k = p->ser[i].key;

		if (strncmp(k, "dotproxy_refused_total{reason=\"", 31))
			continue;
		refused++;
		if (strstr(k, "inflight"))
			ck_assert_str_eq(p->ser[i].value, "309");
		else if (strstr(k, "tcp"))
			ck_assert_str_eq(p->ser[i].value, "310");
		else
			ck_abort_msg("unknown refusal reason: %s", k);
	}
	ck_assert_int_eq(refused, 2);
	ck_assert_str_eq(family_of(p, "dotproxy_refused_total", 22)->type, "counter");
	/* per-upstream ones are pool_render's: not here, not twice */
	ck_assert_ptr_null(strstr(text, "dotproxy_tls_handshakes"));
	ck_assert_ptr_null(strstr(text, "dotproxy_tls_resumed"));
	ck_assert_ptr_null(strstr(text, "dotproxy_upstream_queries_total"));
	/* nothing else: 3 paths x (2 + 12), 16 above, 2 refused, 1 build_info */
	ck_assert_int_eq(p->nser, 3 * (2 + 2 * MR_COUNT) + 16 + 2 + 1);
	ck_assert_ptr_nonnull(family_of(p, "dotproxy_build_info", 19));
	free(text);
	free(p);
}
END_TEST

START_TEST(render_of_zero_counters_says_zero)
{
	struct metrics m;
	struct page *p = calloc(1, sizeof(*p));
	char *text;

	ck_assert_ptr_nonnull(p);
	memset(&m, 0, sizeof(m));
	m.path[MF_REDIRECT][MT_TCP].used = true;
	text = render(&m);
	parse_page(text, p);
	for (int i = 0; i < p->nser; i++)
		if (strncmp(p->ser[i].key, "dotproxy_build_info", 19))
			ck_assert_msg(!strcmp(p->ser[i].value, "0"), "%s is %s", p->ser[i].key, p->ser[i].value);
	expect(p, "dotproxy_queries_total{frontend=\"redirect\",transport=\"tcp\",family=\"ipv6\"}", "counter", 0);
	/* no front-end in use: the families are declared, with no series */
	memset(&m, 0, sizeof(m));
	free(text);
	text = render(&m);
	parse_page(text, p);
	ck_assert_ptr_nonnull(family_of(p, "dotproxy_queries_total", 22));
	ck_assert_ptr_null(strstr(text, "\ndotproxy_queries_total{"));
	ck_assert_ptr_null(strstr(text, "\ndotproxy_answers_total{"));
	free(text);
	free(p);
}
END_TEST

START_TEST(rcodes_are_counted_under_their_names)
{
	struct metrics m;
	struct page *p = calloc(1, sizeof(*p));
	/* rcode -> times counted: 0..5 by RFC 1035 4.1.1, then extended and bogus ones */
	static const int rcodes[][2] = { { 0, 1 }, { 1, 2 }, { 2, 3 }, { 3, 4 }, { 4, 5 }, { 5, 6 },
					 { 9, 7 }, { 15, 8 }, { -1, 9 }, { 23, 10 } };
	struct metrics_path *path;
	uint8_t msg[12] = { 0x12, 0x34, 0x81, 0x80 };
	char *text;

	ck_assert_ptr_nonnull(p);
	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++)
		for (int n = 0; n < rcodes[i][1]; n++)
			metrics_count_rcode(&m, rcodes[i][0]);
	ck_assert_uint_eq(m.answers[MR_NOERROR], 1);
	ck_assert_uint_eq(m.answers[MR_FORMERR], 2);
	ck_assert_uint_eq(m.answers[MR_SERVFAIL], 3);
	ck_assert_uint_eq(m.answers[MR_NXDOMAIN], 4);
	ck_assert_uint_eq(m.answers[MR_REFUSED], 6);
	ck_assert_uint_eq(m.answers[MR_OTHER], 5 + 7 + 8 + 9 + 10);	/* NOTIMP and the rest */
	/* a front-end counts the rcode of the answer it sends: the header's low 4 bits of octet 3 */
	path = &m.path[MF_REDIRECT][MT_UDP];
	path->used = true;
	for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++) {
		if (rcodes[i][0] < 0 || rcodes[i][0] > 15)
			continue;
		msg[3] = (uint8_t)(0x80 | 0x30 | rcodes[i][0]);		/* RA and Z/AD/CD bits around it */
		for (int n = 0; n < rcodes[i][1]; n++)
			metrics_path_answer(path, MFAM_IPV6, msg, sizeof(msg));
	}
	metrics_path_answer(path, MFAM_IPV4, msg, 3);			/* no rcode in 3 octets */
	text = render(&m);
	parse_page(text, p);
	expect(p, "dotproxy_answers_total{frontend=\"redirect\",transport=\"udp\",family=\"ipv6\",rcode=\"NOERROR\"}", "counter", 1);
	expect(p, "dotproxy_answers_total{frontend=\"redirect\",transport=\"udp\",family=\"ipv6\",rcode=\"FORMERR\"}", "counter", 2);
	expect(p, "dotproxy_answers_total{frontend=\"redirect\",transport=\"udp\",family=\"ipv6\",rcode=\"SERVFAIL\"}", "counter", 3);
	expect(p, "dotproxy_answers_total{frontend=\"redirect\",transport=\"udp\",family=\"ipv6\",rcode=\"NXDOMAIN\"}", "counter", 4);
	expect(p, "dotproxy_answers_total{frontend=\"redirect\",transport=\"udp\",family=\"ipv6\",rcode=\"REFUSED\"}", "counter", 6);
	expect(p, "dotproxy_answers_total{frontend=\"redirect\",transport=\"udp\",family=\"ipv6\",rcode=\"other\"}", "counter", 5 + 7 + 8);
	expect(p, "dotproxy_answers_total{frontend=\"redirect\",transport=\"udp\",family=\"ipv4\",rcode=\"other\"}", "counter", 1);
	expect(p, "dotproxy_answers_total{frontend=\"redirect\",transport=\"udp\",family=\"ipv4\",rcode=\"NOERROR\"}", "counter", 0);
	free(text);
	free(p);
}
END_TEST

START_TEST(family_of_a_client_address)
{
	union sockaddr_any a;

	memset(&a, 0, sizeof(a));
	a.sin.sin_family = AF_INET;
	ck_assert_int_eq(metrics_family(&a), MFAM_IPV4);
	memset(&a, 0, sizeof(a));
	a.sin6.sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::1", &a.sin6.sin6_addr), 1);
	ck_assert_int_eq(metrics_family(&a), MFAM_IPV6);
	ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.0.2.1", &a.sin6.sin6_addr), 1);
	ck_assert_int_eq(metrics_family(&a), MFAM_IPV4);	/* a dual-stack socket's IPv4 client */
}
END_TEST

/* A page of one histogram per label set, parsed. */
static void render_histograms(const struct metrics_hist *h, int n, struct page *p, char **text)
{
	struct strbuf sb = { 0 };
	char labels[64];

	metrics_histogram_head(&sb, "dotproxy_test_seconds", "Test histogram.");
	for (int i = 0; i < n; i++) {
		snprintf(labels, sizeof(labels), "upstream=\"u%d\"", i);
		metrics_histogram(&sb, "dotproxy_test_seconds", labels, &h[i]);
	}
	ck_assert_int_eq(sb.err, 0);
	parse_page(sb.buf, p);
	*text = sb.buf;
}

START_TEST(histogram_buckets_are_cumulative_and_end_with_inf)
{
	/* answer times in ms, and the bucket (its le) each must first count in */
	static const struct { unsigned ms; const char *le; } obs[] = {
		{ 0, "0.001" }, { 1, "0.001" }, { 2, "0.002" }, { 3, "0.005" }, { 5, "0.005" },
		{ 6, "0.010" }, { 99, "0.100" }, { 100, "0.100" }, { 101, "0.200" }, { 1000, "1.000" },
		{ 4999, "5.000" }, { 5000, "5.000" }, { 5001, "+Inf" }, { 3600000, "+Inf" },
	};
	static const char *const les[] = { "0.001", "0.002", "0.005", "0.010", "0.020", "0.050", "0.100",
					   "0.200", "0.500", "1.000", "2.000", "5.000", "+Inf" };
	struct metrics_hist h[2];
	struct page *p = calloc(1, sizeof(*p));
	unsigned long long sum = 0;
	char *text, key[128], want[32];

	ck_assert_ptr_nonnull(p);
	memset(h, 0, sizeof(h));
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
		metrics_hist_observe(&h[0], obs[i].ms);
		sum += obs[i].ms;
	}
	render_histograms(h, 2, p, &text);
	/* each bucket counts the observations at or below its bound */
	for (size_t b = 0; b < sizeof(les) / sizeof(les[0]); b++) {
		unsigned long long n = 0;

		for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
			size_t first = 0;

			while (strcmp(les[first], obs[i].le))
				first++;
			n += first <= b;
		}
		snprintf(key, sizeof(key), "dotproxy_test_seconds_bucket{upstream=\"u0\",le=\"%s\"}", les[b]);
		expect(p, key, "histogram", n);
		snprintf(key, sizeof(key), "dotproxy_test_seconds_bucket{upstream=\"u1\",le=\"%s\"}", les[b]);
		expect(p, key, "histogram", 0);
	}
	expect(p, "dotproxy_test_seconds_count{upstream=\"u0\"}", "histogram", sizeof(obs) / sizeof(obs[0]));
	snprintf(want, sizeof(want), "%llu.%03llu", sum / 1000, sum % 1000);
	expect_text(p, "dotproxy_test_seconds_sum{upstream=\"u0\"}", want);
	expect_text(p, "dotproxy_test_seconds_sum{upstream=\"u1\"}", "0.000");
	expect(p, "dotproxy_test_seconds_count{upstream=\"u1\"}", "histogram", 0);
	ck_assert_int_eq(p->nser, 2 * (13 + 2));
	free(text);
	free(p);
}
END_TEST

START_TEST(histogram_counts_past_32_bits)
{
	struct metrics_hist h;
	struct page *p = calloc(1, sizeof(*p));
	char *text;

	ck_assert_ptr_nonnull(p);
	memset(&h, 0, sizeof(h));
	h.n[0] = 5000000000ULL;
	h.n[METRICS_LAT_BUCKETS] = 7;
	h.sum_ms = 123456789012ULL;
	render_histograms(&h, 1, p, &text);
	expect(p, "dotproxy_test_seconds_bucket{upstream=\"u0\",le=\"0.001\"}", "histogram", 5000000000ULL);
	expect(p, "dotproxy_test_seconds_bucket{upstream=\"u0\",le=\"5.000\"}", "histogram", 5000000000ULL);
	expect(p, "dotproxy_test_seconds_bucket{upstream=\"u0\",le=\"+Inf\"}", "histogram", 5000000007ULL);
	expect(p, "dotproxy_test_seconds_count{upstream=\"u0\"}", "histogram", 5000000007ULL);
	expect_text(p, "dotproxy_test_seconds_sum{upstream=\"u0\"}", "123456789.012");
	free(text);
	free(p);
}
END_TEST

START_TEST(strbuf_grows_past_its_first_block)
{
	struct strbuf sb = { 0 };
	char want[32];

	for (int i = 0; i < 1000; i++)
		strbuf_printf(&sb, "line %04d\n", i);	/* 10 bytes each: 10000 in all */
	ck_assert_int_eq(sb.err, 0);
	ck_assert_uint_eq(sb.len, 10000);
	ck_assert_uint_gt(sb.cap, sb.len);
	ck_assert_int_eq(sb.buf[sb.len], '\0');
	for (int i = 0; i < 1000; i++) {
		snprintf(want, sizeof(want), "line %04d\n", i);
		ck_assert_mem_eq(sb.buf + 10 * i, want, 10);
	}
	free(sb.buf);
}
END_TEST

START_TEST(strbuf_takes_one_piece_larger_than_a_doubling)
{
	struct strbuf sb = { 0 };
	char *big = malloc(20001);

	ck_assert_ptr_nonnull(big);
	for (int i = 0; i < 20000; i++)
		big[i] = (char)('a' + i % 26);
	big[20000] = '\0';
	strbuf_printf(&sb, "%s", "");			/* empty: still a valid string */
	ck_assert_int_eq(sb.err, 0);
	ck_assert_uint_eq(sb.len, 0);
	ck_assert_ptr_nonnull(sb.buf);
	ck_assert_int_eq(sb.buf[0], '\0');
	strbuf_printf(&sb, "<%d>", 42);
	strbuf_printf(&sb, "%s|%s", big, big);		/* 40001 bytes at once: past 4096 * 2 * 2 */
	ck_assert_int_eq(sb.err, 0);
	ck_assert_uint_eq(sb.len, 4 + 40001);
	ck_assert_mem_eq(sb.buf, "<42>", 4);
	ck_assert_mem_eq(sb.buf + 4, big, 20000);
	ck_assert_int_eq(sb.buf[4 + 20000], '|');
	ck_assert_mem_eq(sb.buf + 4 + 20001, big, 20000);
	ck_assert_int_eq(sb.buf[sb.len], '\0');
	free(sb.buf);
	free(big);
}
END_TEST

/* ---- the HTTP endpoint ---- */

static struct loop *lp;
static struct metrics_http *http;

/* What the page callback renders, and what it rendered last. */
static struct {
	struct metrics m;
	int healthy;
	size_t filler;		/* extra bytes, to make the page large */
	int calls;
	char *last;
	size_t last_len;
} pg;

static int page_cb(void *arg, struct strbuf *sb)
{
	size_t start = sb->len;

	ck_assert_ptr_eq(arg, &pg);
	pg.calls++;
	metrics_render(&pg.m, sb);
	strbuf_printf(sb, "# page %d\n", pg.calls);
	for (size_t i = 0; i < pg.filler / 64; i++)
		strbuf_printf(sb, "# filler %054zu\n", i);
	ck_assert_int_eq(sb->err, 0);
	free(pg.last);
	pg.last_len = sb->len - start;
	pg.last = malloc(pg.last_len + 1);
	ck_assert_ptr_nonnull(pg.last);
	memcpy(pg.last, sb->buf + start, pg.last_len);
	return pg.healthy;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_stop(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l);
}

/* Run the loop for @ms. */
static void run_for(unsigned ms)
{
	struct loop_timer t;

	loop_timer_init(&t, on_stop, NULL);
	ck_assert_int_eq(loop_timer_set(lp, &t, ms), 0);
	ck_assert_int_eq(loop_run(lp), 0);
	loop_timer_cancel(lp, &t);
}

static union sockaddr_any http_addr;

/* A free loopback port: bind port 0, read it, close. */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void setup(void)
{
	memset(&pg, 0, sizeof(pg));
	pg.healthy = 1;
	distinct(&pg.m);
	lp = loop_new();
	ck_assert_ptr_nonnull(lp);
	/* another process may take the port between close and bind: try a few */
	for (int i = 0; i < 5 && !http; i++) {
		memset(&http_addr, 0, sizeof(http_addr));
		http_addr.sin.sin_family = AF_INET;
		http_addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		http_addr.sin.sin_port = htons(free_port());
		http = metrics_http_start(lp, &http_addr, page_cb, &pg);
		ck_assert_msg(http || errno == EADDRINUSE, "metrics_http_start: %s", strerror(errno));
	}
	ck_assert_ptr_nonnull(http);
}

static void teardown(void)
{
	metrics_http_stop(lp, http);
	http = NULL;
	loop_free(lp);
	free(pg.last);
	pg.last = NULL;
}

/* A non-blocking client, connected. */
static int client(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;
	socklen_t el = sizeof(err);
	struct pollfd pfd;

	ck_assert_int_ge(fd, 0);
	if (connect(fd, &http_addr.sa, sock_len(&http_addr)) < 0) {
		ck_assert_int_eq(errno, EINPROGRESS);
		pfd.fd = fd;
		pfd.events = POLLOUT;
		ck_assert_int_eq(poll(&pfd, 1, 1000), 1);
		ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el), 0);
		ck_assert_int_eq(err, 0);
	}
	return fd;
}

static void send_str(int fd, const char *s)
{
	ck_assert_int_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

struct response {
	char *buf;
	size_t len;
	bool eof;		/* the server closed */
	int status;
	const char *body;
	size_t body_len;
	long content_length;	/* -1: none */
};

/* Read what is there without blocking; note EOF. */
static void drain(int fd, struct response *r)
{
	for (;;) {
		char tmp[65536];
		ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);

		if (n > 0) {
			char *nb = realloc(r->buf, r->len + (size_t)n + 1);

			ck_assert_ptr_nonnull(nb);
			r->buf = nb;
			memcpy(r->buf + r->len, tmp, (size_t)n);
			r->len += (size_t)n;
			r->buf[r->len] = '\0';
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			r->eof = true;
		return;
	}
}

/* Run the loop in slices, reading @fd, until the server closes it or @max_ms pass. */
static void exchange(int fd, struct response *r, unsigned max_ms)
{
	uint64_t end = now_ms() + max_ms;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	while (!r->eof && now_ms() < end) {
		run_for(2);
		drain(fd, r);
	}
}

/* Split @r into status, Content-Length and body. */
static void parse_response(struct response *r)
{
	const char *hdr_end, *cl;

	ck_assert_msg(r->eof, "the server did not close the connection");
	ck_assert_ptr_nonnull(r->buf);
	ck_assert_msg(!strncmp(r->buf, "HTTP/1.", 7) && r->buf[8] == ' ', "bad status line: %.40s", r->buf);
	r->status = atoi(r->buf + 9);
	hdr_end = strstr(r->buf, "\r\n\r\n");
	ck_assert_ptr_nonnull(hdr_end);
	r->body = hdr_end + 4;
	r->body_len = r->len - (size_t)(r->body - r->buf);
	cl = strstr(r->buf, "\r\nContent-Length: ");
	if (cl && cl < hdr_end)
		r->content_length = atol(cl + 18);
}

/* One request on a new connection; the parsed response. */
static void request(const char *req, struct response *r)
{
	int fd = client();

	send_str(fd, req);
	exchange(fd, r, 2000);
	close(fd);
	parse_response(r);
}

static void free_response(struct response *r)
{
	free(r->buf);
	r->buf = NULL;
}

START_TEST(get_metrics_serves_the_page)
{
	struct response r;

	request("GET /metrics HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(pg.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.buf, "\r\nContent-Type: text/plain; version=0.0.4"));
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	ck_assert_uint_eq(r.body_len, pg.last_len);
	ck_assert_mem_eq(r.body, pg.last, pg.last_len);
	/* and it is the page of our counters */
	ck_assert_ptr_nonnull(strstr(r.body, "\ndotproxy_upstream_bad_answers_total 12345678901234\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "\n# page 1\n"));
	free_response(&r);
}
END_TEST

START_TEST(large_page_arrives_whole)
{
	struct response r;
	int fd = client();

	/* more than the send buffer TCP sizes for a loopback connection (~2 MiB): many send() calls */
	pg.filler = 8 << 20;
	send_str(fd, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
	exchange(fd, &r, 2000);
	close(fd);
	parse_response(&r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_gt(pg.last_len, (size_t)(8 << 20) - 64);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	ck_assert_uint_eq(r.body_len, pg.last_len);
	ck_assert_mem_eq(r.body, pg.last, pg.last_len);
	free_response(&r);
}
END_TEST

START_TEST(request_in_pieces_is_served)
{
	struct response r;
	int fd = client();

	send_str(fd, "GET /met");
	run_for(30);
	send_str(fd, "rics?x=1 HTTP/1.0\r\n\r\n");
	exchange(fd, &r, 2000);
	close(fd);
	parse_response(&r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, pg.last_len);
	ck_assert_mem_eq(r.body, pg.last, pg.last_len);
	free_response(&r);
}
END_TEST

START_TEST(head_gives_the_length_without_the_body)
{
	struct response r;

	request("HEAD /metrics HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, 0);
	ck_assert_int_eq(r.content_length, (long)pg.last_len);
	free_response(&r);
}
END_TEST

START_TEST(health_follows_the_callback)
{
	struct response r;

	pg.healthy = 1;
	request("GET /health HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(r.body_len >= 2 && r.body_len <= 3 && !strncmp(r.body, "ok", 2), "body: %s", r.body);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	ck_assert_int_eq(pg.calls, 1);
	free_response(&r);
	pg.healthy = 0;
	request("GET /health HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	ck_assert_ptr_null(strstr(r.body, "dotproxy_"));	/* not the metrics page */
	ck_assert_int_eq(pg.calls, 2);
	free_response(&r);
}
END_TEST

START_TEST(unknown_path_is_404_and_other_methods_405)
{
	struct response r;

	request("GET /nope HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	free_response(&r);
	request("GET /metricsx HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 404);
	free_response(&r);
	request("POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	free_response(&r);
	ck_assert_int_eq(pg.calls, 0);		/* none of these rendered the page */
}
END_TEST

START_TEST(silent_client_is_closed_after_two_seconds)
{
	struct response r = { 0 };
	int fd = client();
	uint64_t t0 = now_ms(), closed_at = 0;

	/* still open well before the timeout */
	while (now_ms() - t0 < 1500) {
		run_for(50);
		drain(fd, &r);
		ck_assert_msg(!r.eof, "closed after %llu ms", (unsigned long long)(now_ms() - t0));
	}
	while (!r.eof && now_ms() - t0 < 3000) {
		run_for(20);
		drain(fd, &r);
	}
	closed_at = now_ms() - t0;
	ck_assert_msg(r.eof, "still open after %llu ms", (unsigned long long)closed_at);
	ck_assert_uint_ge(closed_at, 1900);
	ck_assert_uint_le(closed_at, 2600);
	ck_assert_uint_eq(r.len, 0);		/* closed, nothing said */
	ck_assert_int_eq(pg.calls, 0);
	close(fd);
}
END_TEST

START_TEST(clients_past_the_cap_are_closed_and_served_later)
{
	int idle[8], extra[4];
	struct response r;

	for (int i = 0; i < 8; i++)
		idle[i] = client();
	run_for(50);			/* all 8 accepted, none has asked anything */
	for (int i = 0; i < 4; i++) {
		extra[i] = client();
		send_str(extra[i], "GET /metrics HTTP/1.0\r\n\r\n");
	}
	for (int i = 0; i < 4; i++) {
		exchange(extra[i], &r, 1000);
		ck_assert_msg(r.eof, "client %d past the cap was left open", i);
		ck_assert_uint_eq(r.len, 0);
		free(r.buf);
		close(extra[i]);
	}
	ck_assert_int_eq(pg.calls, 0);
	/* the 8 go away: their places are free again */
	for (int i = 0; i < 8; i++)
		close(idle[i]);
	run_for(50);
	request("GET /metrics HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, pg.last_len);
	free_response(&r);
}
END_TEST

START_TEST(twelve_requests_at_once_eight_served_four_closed)
{
	int fd[12], served = 0, closed = 0;
	struct response r[12];
	uint64_t end;
	bool done = false;

	for (int i = 0; i < 12; i++) {
		fd[i] = client();
		send_str(fd[i], "GET /metrics HTTP/1.0\r\n\r\n");
		memset(&r[i], 0, sizeof(r[i]));
	}
	end = now_ms() + 2000;
	while (!done && now_ms() < end) {
		run_for(10);
		done = true;
		for (int i = 0; i < 12; i++) {
			drain(fd[i], &r[i]);
			done = done && r[i].eof;
		}
	}
	for (int i = 0; i < 12; i++) {
		ck_assert_msg(r[i].eof, "client %d left open", i);
		if (r[i].len == 0) {
			closed++;
		} else {
			r[i].content_length = -1;
			parse_response(&r[i]);
			ck_assert_int_eq(r[i].status, 200);
			ck_assert_int_eq(r[i].content_length, (long)r[i].body_len);
			served++;
		}
		free(r[i].buf);
		close(fd[i]);
	}
	ck_assert_int_eq(served, 8);
	ck_assert_int_eq(closed, 4);
	ck_assert_int_eq(pg.calls, 8);
}
END_TEST

START_TEST(stop_closes_clients_in_progress)
{
	struct response r = { 0 };
	int fd = client();

	run_for(30);
	metrics_http_stop(lp, http);
	http = NULL;
	drain(fd, &r);
	for (int i = 0; i < 50 && !r.eof; i++) {
		usleep(2000);
		drain(fd, &r);
	}
	ck_assert(r.eof);
	ck_assert_uint_eq(r.len, 0);
	close(fd);
	/* and the port is free again */
	http = metrics_http_start(lp, &http_addr, page_cb, &pg);
	ck_assert_msg(http != NULL, "restart: %s", strerror(errno));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *text = tcase_create("text");
	TCase *web = tcase_create("http");

	tcase_add_test(text, render_has_every_metric_with_its_value);
	tcase_add_test(text, render_of_zero_counters_says_zero);
	tcase_add_test(text, rcodes_are_counted_under_their_names);
	tcase_add_test(text, family_of_a_client_address);
	tcase_add_test(text, histogram_buckets_are_cumulative_and_end_with_inf);
	tcase_add_test(text, histogram_counts_past_32_bits);
	tcase_add_test(text, strbuf_grows_past_its_first_block);
	tcase_add_test(text, strbuf_takes_one_piece_larger_than_a_doubling);
	suite_add_tcase(s, text);
	tcase_add_checked_fixture(web, setup, teardown);
	tcase_set_timeout(web, 10);
	tcase_add_test(web, get_metrics_serves_the_page);
	tcase_add_test(web, large_page_arrives_whole);
	tcase_add_test(web, request_in_pieces_is_served);
	tcase_add_test(web, head_gives_the_length_without_the_body);
	tcase_add_test(web, health_follows_the_callback);
	tcase_add_test(web, unknown_path_is_404_and_other_methods_405);
	tcase_add_test(web, silent_client_is_closed_after_two_seconds);
	tcase_add_test(web, clients_past_the_cap_are_closed_and_served_later);
	tcase_add_test(web, twelve_requests_at_once_eight_served_four_closed);
	tcase_add_test(web, stop_closes_clients_in_progress);
	suite_add_tcase(s, web);
	return unit_run(s);
}
