/*
 * fuzz_yaml.c - libFuzzer target for the YAML loader: any input must load
 * or fail with ATEX_EFORMAT, never crash, leak or trip a sanitizer, and a
 * loaded value must be dumpable JSON (no inf/NaN, valid UTF-8) with marks
 * for its containers.
 *
 * Built only with -Dfuzz=true (clang); see tests/fuzz/meson.build.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fmf/yaml.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct atex_marks *marks = atex_marks_new();
	json_t *v = NULL;
	char *dump;
	int rc;

	if (!marks)
		abort();
	rc = atex_yaml_load(&v, (const char *)data, size, "fuzz.yaml", marks);
	/* Out of memory is not expected at these sizes: any other code
	 * (or none with no value) is a loader bug. */
	if (rc != 0 && rc != ATEX_EFORMAT)
		abort();
	if (rc == 0) {
		if (!v)
			abort();
		if ((json_is_object(v) || json_is_array(v)) &&
		    !atex_marks_find(marks, v, NULL))
			abort();
		dump = json_dumps(v, JSON_ENCODE_ANY);
		if (!dump)
			abort();
		free(dump);
		json_decref(v);
	} else if (v) {
		abort();
	}
	atex_marks_free(marks);
	return 0;
}
