/*
 * ignrt PROGRAM [ARGS...]: run PROGRAM with signals 32 and 33 ignored,
 * the real-time signals glibc keeps for itself (its sigaction refuses
 * them, the system call does not): what an unusual parent can hand down.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: ignrt PROGRAM [ARGS...]\n");
		return 64;
	}
	for (int sig = 32; sig <= 33; sig++) {
		struct {
			void *handler;
			unsigned long flags;
			void *restorer;
			unsigned long mask;
		} k = { (void *)SIG_IGN, 0, NULL, 0 };
		syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(k.mask));
	}
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
