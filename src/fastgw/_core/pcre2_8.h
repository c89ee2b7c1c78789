/* PCRE2 with 8-bit code units (the only width fastgw uses). pcre2.h refuses to be included
 * without PCRE2_CODE_UNIT_WIDTH, and Cython cannot define a macro before an include, so the
 * definition lives here. */
#ifndef FASTGW_PCRE2_8_H
#define FASTGW_PCRE2_8_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Subjects are request bytes that may not be UTF-8. PCRE2 >= 10.34 matches them in UTF mode
 * (an invalid sequence just matches nothing); older releases (e.g. 10.32 in RHEL 8 based
 * manylinux images) would refuse such a subject, so there the patterns match bytes. */
#ifdef PCRE2_MATCH_INVALID_UTF
#define FASTGW_PCRE2_UTF_OPTIONS (PCRE2_UTF | PCRE2_MATCH_INVALID_UTF)
#else
#define FASTGW_PCRE2_UTF_OPTIONS 0
#endif
#endif
