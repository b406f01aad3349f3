/* local.c: being written */
