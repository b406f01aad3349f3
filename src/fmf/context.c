/* context.c: not written yet */
