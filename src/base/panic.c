/* panic.c — formats an invariant failure and hands it to the platform.
 * Uses a static buffer: panic is terminal, so re-entrancy does not matter. */
#include "base/panic.h"

#include <stdarg.h>

#include "base/fmt.h"

_Noreturn void panic(const char *fmt, ...)
{
	static char message[256];
	va_list ap;

	va_start(ap, fmt);
	fmt_vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	platform_panic(message);
}
