/* static.c: being written */
