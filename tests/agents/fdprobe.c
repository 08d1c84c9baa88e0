/* Prints the file descriptors open at exec, one per line, without opening
 * any itself (fcntl on each number). */
#include <fcntl.h>
#include <stdio.h>

int main(void)
{
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			printf("%d\n", fd);
	return 0;
}
