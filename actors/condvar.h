/* condvar.h — condition variables timed on the monotonic clock, so a wall-clock step (NTP, an
 * operator) neither cuts a wait short nor stretches it. */
#ifndef KASA_ACTORS_CONDVAR_H
#define KASA_ACTORS_CONDVAR_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Initialises cond so that pthread_cond_timedwait() reads its deadline on CLOCK_MONOTONIC. 0, or -1. */
int condvar_init(pthread_cond_t *cond);

/* The CLOCK_MONOTONIC time ms milliseconds from now, as a deadline for a cond made by condvar_init. */
void condvar_deadline(struct timespec *until, int64_t ms);

/* Ends a thread that waits on cond under mu while *stop is 0: sets *stop under mu, wakes every
 * waiter, and joins the thread. */
void condvar_stop_join(pthread_mutex_t *mu, pthread_cond_t *cond, int *stop, pthread_t thread);

/* The body of a periodic thread: fn(arg) now, then every period_ms, until condvar_stop_join sets
 * *stop (read under mu; fn runs outside it). */
void condvar_every(pthread_mutex_t *mu, pthread_cond_t *cond, const int *stop, int64_t period_ms,
                   void (*fn)(void *arg), void *arg);

#endif
