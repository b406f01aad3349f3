/*
 * http.c - placeholder until the HTTP client lands (http.h says what it
 * does). Every call fails.
 */
#include "util/http.h"
#include "util/util.h"
