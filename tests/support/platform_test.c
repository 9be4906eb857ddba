/* platform_test.c — the platform hooks the core needs, for unit and fuzz
 * programs on the host: panic prints and aborts (so sanitizers and cmocka
 * report it). */
#include <stdio.h>
#include <stdlib.h>

#include "base/panic.h"

_Noreturn void platform_panic(const char *message)
{
	fprintf(stderr, "PANIC: %s\n", message);
	abort();
}
