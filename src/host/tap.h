/* tap.h — Linux TAP devices (IFF_TAP | IFF_NO_PI) standing in for Xen vifs
 * in the host runner. Host platform only; non-blocking. */
#ifndef HOST_TAP_H
#define HOST_TAP_H

#include <stdbool.h>
#include <stddef.h>

/* Opens (creating if needed) the TAP device name, brings it up, returns a
 * non-blocking fd or -1 (errno set). */
int tap_open(const char *name);

/* One frame, or 0 when none is waiting, -1 on error. */
long tap_read(int fd, void *buf, size_t cap);

/* Writes one frame; false when the device refused it (queue full). */
bool tap_write(int fd, const void *frame, size_t len);

#endif
