/* merge.c: not written yet */
