/* cancel.c: being written */
