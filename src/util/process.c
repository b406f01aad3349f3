/* process.c: being written */
