/* pyre.c: not written yet */
