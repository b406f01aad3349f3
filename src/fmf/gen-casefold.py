# Writes src/fmf/casefold.c: python3 src/fmf/gen-casefold.py > src/fmf/casefold.c
import unicodedata, sys
single=[];multi=[]
for cp in range(0x80,0x110000):
    f=chr(cp).casefold()
    if f==chr(cp): continue
    if len(f)==1: single.append((cp,ord(f)-cp))
    else: multi.append((cp,f))
r=[]
for cp,d in single:
    if r:
        s,e,dd,st=r[-1]
        if dd==d and ((st==0 and cp-e in (1,2)) or (st and cp-e==st)):
            r[-1]=(s,cp,d,cp-e); continue
    r.append((cp,cp,d,0))
# verify
def look(cp):
    for s,e,d,st in r:
        if s<=cp<=e and (cp-s)%(st or 1)==0: return cp+d
    return None
for cp,d in single: assert look(cp)==cp+d
for i in range(len(r)-1): assert r[i][1]<r[i+1][0]
out=[]
out.append('''/*
 * casefold.c - Python's str.casefold() code point by code point, for the
 * case-insensitive context comparisons tmt asks fmf for. Generated from
 * Python %s (Unicode %s) with src/fmf/gen-casefold.py; do not edit.
 */
#include <stddef.h>
#include <stdint.h>

#include "fmf/fmf_private.h"

/* Code points first..last, every `stride`-th, fold to cp + delta. */
static const struct {
	uint32_t first, last;
	int32_t delta;
	uint8_t stride;
} ranges[] = {''' % (sys.version.split()[0], unicodedata.unidata_version))
for s,e,d,st in r:
    out.append('\t{0x%04X, 0x%04X, %d, %d},' % (s,e,d,st or 1))
out.append('''};

/* Code points that fold to more than one (U+00DF to "ss"). */
static const struct {
	uint32_t cp;
	uint32_t to[3];
} multi[] = {''')
for cp,f in multi:
    to=[ord(c) for c in f]+[0]*(3-len(f))
    out.append('\t{0x%04X, {0x%04X, 0x%04X, 0x%04X}},' % (cp,*to))
out.append('''};

size_t atex_casefold(uint32_t cp, uint32_t out[3])
{
	size_t lo, hi;

	out[0] = cp;
	if (cp < 0x80) {
		if (cp >= 'A' && cp <= 'Z')
			out[0] = cp + 32;
		return 1;
	}
	for (lo = 0, hi = sizeof(multi) / sizeof(multi[0]); lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (multi[mid].cp == cp) {
			out[0] = multi[mid].to[0];
			out[1] = multi[mid].to[1];
			out[2] = multi[mid].to[2];
			return out[2] ? 3 : 2;
		}
		if (multi[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (lo = 0, hi = sizeof(ranges) / sizeof(ranges[0]); lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (cp > ranges[mid].last) {
			lo = mid + 1;
		} else if (cp < ranges[mid].first) {
			hi = mid;
		} else {
			if ((cp - ranges[mid].first) % ranges[mid].stride == 0)
				out[0] = (uint32_t)((int32_t)cp + ranges[mid].delta);
			return 1;
		}
	}
	return 1;
}''')
print('\n'.join(out))
