/* discover.c: not written yet */
