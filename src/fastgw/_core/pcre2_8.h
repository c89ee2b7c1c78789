/* PCRE2 with 8-bit code units (the only width fastgw uses). pcre2.h refuses to be included
 * without PCRE2_CODE_UNIT_WIDTH, and Cython cannot define a macro before an include, so the
 * definition lives here. */
#ifndef FASTGW_PCRE2_8_H
#define FASTGW_PCRE2_8_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif
