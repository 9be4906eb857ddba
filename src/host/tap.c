/* tap.c — TAP devices for the host runner. */
#include "host/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int tap_open(const char *name)
{
	struct ifreq ifr;
	if (strlen(name) >= IFNAMSIZ) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	memcpy(ifr.ifr_name, name, strlen(name) + 1);
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	/* Bring the link up here; a test harness that moves it into another
	 * namespace configures it there. */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0) {
		if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
			ifr.ifr_flags |= IFF_UP;
			(void)ioctl(s, SIOCSIFFLAGS, &ifr);
		}
		close(s);
	}
	return fd;
}

long tap_read(int fd, void *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap);
	if (n >= 0)
		return (long)n;
	return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
}

bool tap_write(int fd, const void *frame, size_t len)
{
	ssize_t n = write(fd, frame, len);
	return n == (ssize_t)len;
}
