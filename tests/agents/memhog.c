/* Allocates and touches memory until malloc fails (memory_limit reached),
 * then reports like most programs do and exits 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	for (size_t total = 0;; total += 1 << 20) {
		char *p = malloc(1 << 20);
		if (!p) {
			fprintf(stderr, "memhog: after %zu MiB: %s\n", total >> 20,
				strerror(errno));
			return 1;
		}
		memset(p, 1, 1 << 20);
	}
}
