/* filter.c: not written yet */
