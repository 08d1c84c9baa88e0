/*
 * floor: the least any runner can do for N items on P slots: vfork+exec of
 * the command with the item as its last argument, wait, next.  No files,
 * no journal, no bookkeeping.  Usage: floor N P COMMAND [ARGS...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: floor N P COMMAND [ARGS...]\n");
		return 64;
	}
	long n = atol(argv[1]), p = atol(argv[2]), started = 0, running = 0;
	int nargs = argc - 3;
	char **av = calloc((size_t)nargs + 2, sizeof(char *));
	char item[32];
	for (int i = 0; i < nargs; i++)
		av[i] = argv[3 + i];
	av[nargs] = item;
	while (started < n || running > 0) {
		while (running < p && started < n) {
			snprintf(item, sizeof(item), "S%ld", started + 1);
			pid_t pid = vfork();
			if (pid == 0) {
				execv(av[0], av);
				_exit(127);
			}
			if (pid < 0) {
				perror("vfork");
				return 1;
			}
			started++;
			running++;
		}
		int status;
		if (wait(&status) > 0)
			running--;
	}
	free(av);
	return 0;
}
