/*
 * pyre.h - private: regular expressions with Python `re` semantics (str
 * patterns: Unicode, \w \d \s Unicode-aware), on top of PCRE2. fmf is a
 * Python program whose users write Python regular expressions in metadata;
 * this is where the differences in syntax and in re.sub() templates are
 * bridged.
 */
#ifndef ATEX_PYRE_H
#define ATEX_PYRE_H

#include <stddef.h>

struct atex_pyre;

enum atex_pyre_flags {
	ATEX_PYRE_IGNORECASE = 1 << 0, /* re.IGNORECASE */
};

/*
 * Compiles `pattern`. Returns 0, or ATEX_ERULE with a message quoting the
 * pattern and the offset of the error, or ATEX_ENOMEM. The compiled
 * pattern may be used from several threads at once.
 */
int atex_pyre_compile(struct atex_pyre **out, const char *pattern, int flags);
void atex_pyre_free(struct atex_pyre *re);

/* re.search(): 1 when `subject` contains a match, 0 when not, negative
 * on a matching error (with a message). */
int atex_pyre_search(const struct atex_pyre *re, const char *subject);

/* re.fullmatch(): 1 when the whole `subject` matches, 0 when not. */
int atex_pyre_fullmatch(const struct atex_pyre *re, const char *subject);

/*
 * re.sub(pattern, repl, subject): every non-overlapping match replaced by
 * the expanded Python template `repl` (\1, \g<1>, \g<name>, \n, \\ ...).
 * Returns 0 with a malloc'ed string in *out, ATEX_ERULE for a bad template
 * (unknown group), ATEX_ENOMEM.
 */
int atex_pyre_sub(char **out, const struct atex_pyre *re, const char *repl,
		  const char *subject);

/*
 * Convenience forms that compile through a small process-wide cache (the
 * same pattern is used for thousands of nodes), thread-safe. Same return
 * values as the calls above plus those of atex_pyre_compile.
 *
 * The cache is the one piece of global state here: a fixed table of 256
 * compiled patterns (flags 0) indexed by a hash of the pattern text and
 * guarded by one mutex held only for the lookup. A different pattern
 * hashing to a taken slot replaces it, so memory stays bounded whatever the
 * number of distinct patterns. Patterns that fail to compile are not
 * cached (the error is recomputed each call). Entries are reference
 * counted: one replaced while another thread still matches with it lives
 * until that thread is done. Entries live until atex_pyre_cache_clear() or
 * process exit.
 */
int atex_pyre_search_str(const char *pattern, const char *subject);
int atex_pyre_sub_str(char **out, const char *pattern, const char *repl,
		      const char *subject);

/* Empties the cache (for leak checkers and tests); patterns in use by
 * other threads are freed when those calls finish. Thread-safe. */
void atex_pyre_cache_clear(void);

#endif /* ATEX_PYRE_H */
