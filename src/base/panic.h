/* panic.h — halting on a broken internal invariant.
 *
 * ASSERT is for our own bugs only, never for peer input: input from a peer
 * is validated and dropped with a log line, it must never reach an ASSERT.
 * panic() formats the message and hands it to the platform, which prints it
 * and stops (the unikernel shuts the domain down with reason "crash"). */
#ifndef BASE_PANIC_H
#define BASE_PANIC_H

_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Provided by each platform (src/pvh, src/host, tests/support). */
_Noreturn void platform_panic(const char *message);

#define ASSERT(cond)                                                                    \
	do {                                                                            \
		if (!(cond))                                                            \
			panic("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__); \
	} while (0)

#endif
