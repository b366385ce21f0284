/* SPDX-License-Identifier: MIT */
/*
 * Launcher for scripts/bench: runs one program and reports its wall time and its own peak RSS.
 *
 * Why a launcher: Linux keeps a process's peak RSS across execve, so a child forked from the
 * benchmark's Python interpreter would report the interpreter's ~17 MiB as its peak. This small
 * program is forked from Python instead, and forks the measured program from itself: a fresh
 * process whose ru_maxrss (from wait4) is its own. The VAR=VALUE settings are applied in that
 * child only, so LD_PRELOAD reaches the measured program and not this launcher.
 *
 * Usage: runstat RESULT_FILE [VAR=VALUE ...] -- PROGRAM [ARGS...]
 * Writes "wall_ns=N cpu_ns=N maxrss_kib=N status=N" to RESULT_FILE (cpu: user + system time
 * of the program and the children it waited for; status as from wait4) and exits
 * with the program's exit status (128+signal if it was killed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	int status, sep = 2;
	pid_t pid;
	FILE *out;

	while (sep < argc && strcmp(argv[sep], "--") != 0)
		sep++;
	if (argc < 4 || sep >= argc - 1) {
		fputs("usage: runstat RESULT_FILE [VAR=VALUE ...] -- PROGRAM [ARGS...]\n", stderr);
		return 125;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		perror("runstat: fork");
		return 125;
	}
	if (pid == 0) {
		for (int i = 2; i < sep; i++)
			if (putenv(argv[i]) != 0)
				_exit(126);
		execvp(argv[sep + 1], argv + sep + 1);
		fprintf(stderr, "runstat: cannot run %s\n", argv[sep + 1]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("runstat: wait4");
		return 125;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out = fopen(argv[1], "w");
	if (!out) {
		perror("runstat: result file");
		return 125;
	}
	fprintf(out, "wall_ns=%lld cpu_ns=%lld maxrss_kib=%ld status=%d\n",
		(long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
		(long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
			+ (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL,
		ru.ru_maxrss, status);
	fclose(out);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
