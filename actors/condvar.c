/* condvar.c — see condvar.h. */
#include "actors/condvar.h"

int condvar_init(pthread_cond_t *cond)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cond, &ca);
    pthread_condattr_destroy(&ca);
    return rc == 0 ? 0 : -1;
}

void condvar_deadline(struct timespec *until, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, until);
    until->tv_sec += (time_t) (ms / 1000);
    until->tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

void condvar_stop_join(pthread_mutex_t *mu, pthread_cond_t *cond, int *stop, pthread_t thread)
{
    pthread_mutex_lock(mu);
    *stop = 1;
    pthread_cond_broadcast(cond);
    pthread_mutex_unlock(mu);
    pthread_join(thread, NULL);
}

void condvar_every(pthread_mutex_t *mu, pthread_cond_t *cond, const int *stop, int64_t period_ms,
                   void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(mu);
    while (!*stop) {
        pthread_mutex_unlock(mu);
        fn(arg);
        pthread_mutex_lock(mu);
        struct timespec until;
        condvar_deadline(&until, period_ms);
        while (!*stop && pthread_cond_timedwait(cond, mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(mu);
}
