/*
 * print: what bench/output runs per item, in one process (as /bin/true is
 * for bench/dispatch): OUT bytes of 'o' to stdout and ERR bytes of 'e' to
 * stderr, then exit 0.  Usage: print OUT ERR [ITEM]
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int put(int fd, char c, long n)
{
	char buf[4096];
	memset(buf, c, sizeof(buf));
	while (n > 0) {
		ssize_t w = write(fd, buf, n < (long)sizeof(buf) ? (size_t)n
							       : sizeof(buf));
		if (w <= 0)
			return 1;
		n -= w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 64;
	return put(1, 'o', atol(argv[1])) | put(2, 'e', atol(argv[2]));
}
