/* Times whole processes as a user runs them, for bench/suite.py: posix_spawn + waitpid of ARGV,
 * N times, stdin and stdout on /dev/null (our stdout carries the JSON), stderr inherited. The
 * same clock and the same spawn for both sides of every ratio (duplex exec against /bin/true,
 * a shell pipeline, ssh).
 * Usage: proc_time [-n RUNS=10] ARGV...
 * Prints one JSON object: {"runs","failures","times_ms":[...]}; exit 1 if any run failed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  int runs = 10;
  int opt;
  while ((opt = getopt(argc, argv, "+n:")) != -1) {
    if (opt != 'n') {
      fprintf(stderr, "usage: proc_time [-n RUNS] ARGV...\n");
      return 2;
    }
    runs = atoi(optarg);
  }
  if (optind >= argc || runs < 1 || runs > 100000) {
    fprintf(stderr, "usage: proc_time [-n RUNS(1-100000)] ARGV...\n");
    return 2;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  double* times = calloc((size_t)runs, sizeof *times);
  int failures = 0;
  for (int i = 0; i < runs; ++i) {
    pid_t pid;
    int status = 0;
    const double start = now_ms();
    if (posix_spawnp(&pid, argv[optind], &actions, NULL, argv + optind, environ) != 0 ||
        waitpid(pid, &status, 0) != pid)
      status = -1;
    times[i] = now_ms() - start;
    if (status != 0) ++failures;
  }
  printf("{\"runs\": %d, \"failures\": %d, \"times_ms\": [", runs, failures);
  for (int i = 0; i < runs; ++i)
    printf("%s%.4f", i ? ", " : "", times[i]);
  printf("]}\n");
  free(times);
  return failures ? 1 : 0;
}
