/* The local baseline for exec rates in bench/suite.py: what a user runs instead of a remote
 * command service, posix_spawn + waitpid of `sh -c CMD` in a loop, in N threads at once.
 * Usage: spawn_rate [-c THREADS=1] [-d SECONDS=3] [CMD=true]
 * Prints one JSON object: {"threads","commands","errors","elapsed_s","cmd_per_s"}. */
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static const char* command = "true";
static double deadline;
static atomic_long commands, errors;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void* loop(void* unused) {
  (void)unused;
  char* argv[] = {"sh", "-c", (char*)command, NULL};
  while (now() < deadline) {
    pid_t pid;
    int status;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      atomic_fetch_add(&errors, 1);
      continue;
    }
    atomic_fetch_add(&commands, 1);
  }
  return NULL;
}

int main(int argc, char** argv) {
  int threads = 1;
  double seconds = 3;
  int opt;
  while ((opt = getopt(argc, argv, "c:d:")) != -1) {
    if (opt == 'c')
      threads = atoi(optarg);
    else if (opt == 'd')
      seconds = atof(optarg);
    else {
      fprintf(stderr, "usage: spawn_rate [-c THREADS] [-d SECONDS] [CMD]\n");
      return 2;
    }
  }
  if (optind < argc) command = argv[optind];
  if (threads < 1 || threads > 256 || seconds <= 0) {
    fprintf(stderr, "spawn_rate: threads 1-256 and a positive duration\n");
    return 2;
  }
  pthread_t ids[256];
  const double start = now();
  deadline = start + seconds;
  for (int i = 0; i < threads; ++i)
    pthread_create(&ids[i], NULL, loop, NULL);
  for (int i = 0; i < threads; ++i)
    pthread_join(ids[i], NULL);
  const double elapsed = now() - start;
  const long n = atomic_load(&commands);
  printf(
      "{\"threads\": %d, \"commands\": %ld, \"errors\": %ld, \"elapsed_s\": %.6f, "
      "\"cmd_per_s\": %.1f}\n",
      threads, n, atomic_load(&errors), elapsed, (double)n / elapsed);
  return atomic_load(&errors) ? 1 : 0;
}
