/* connguard.c — see connguard.h.
 *
 * Why shutdown(2) from the reaper is safe: a connection's socket is closed by the server only after
 * it has called connguard_close, which takes the same lock the reaper holds while it shuts sockets
 * down; so the reaper never touches a descriptor that was closed (and perhaps reused). */
#include "web/connguard.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "actors/condvar.h"
#include "schema/log.h"

#define S_BUCKETS 1024

struct connguard_conn_t {
    int fd;
    netaddr_t key;              /* the client's key (netaddr_key) */
    int counted;                /* counted against its client (not a trusted proxy) */
    atomic_int waiting;         /* waiting for a head: the deadline applies (set without the lock) */
    int cut;                    /* shut down already */
    _Atomic int64_t deadline_ms; /* monotonic; written before waiting is set */
    connguard_conn_t *prev, *next;
};

typedef struct s_client_t {
    netaddr_t key;
    int open;
    struct s_client_t *next;
} s_client_t;

struct connguard_t {
    connguard_opts_t o;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t reaper;
    int stopping;
    connguard_conn_t *conns;
    int open;
    s_client_t *clients[S_BUCKETS];
    uint64_t cut, refused;
    int64_t refused_logged_ms;
};

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned s_bucket(const netaddr_t *key)
{
    unsigned h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key->b[i]) * 16777619u;
    return (h ^ (unsigned) key->v6) % S_BUCKETS;
}

/* The client's entry (made when make is set and it is missing), or NULL. Under the lock. */
static s_client_t *s_client(connguard_t *self, const netaddr_t *key, int make)
{
    s_client_t **head = &self->clients[s_bucket(key)];
    for (s_client_t *c = *head; c; c = c->next)
        if (netaddr_equal(&c->key, key))
            return c;
    if (!make)
        return NULL;
    s_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->key = *key;
    c->next = *head;
    *head = c;
    return c;
}

static void s_client_drop(connguard_t *self, const netaddr_t *key)
{
    s_client_t **pp = &self->clients[s_bucket(key)];
    while (*pp && !netaddr_equal(&(*pp)->key, key))
        pp = &(*pp)->next;
    s_client_t *c = *pp;
    if (!c)
        return;
    if (--c->open <= 0) {
        *pp = c->next;
        free(c);
    }
}

/* The reaper: a few times per deadline, shuts down every connection whose head is late. */
static void *s_reaper(void *arg)
{
    connguard_t *self = arg;
    int period_ms = self->o.header_timeout_ms / 4;
    if (period_ms < 20)
        period_ms = 20;
    if (period_ms > 250)
        period_ms = 250;
    pthread_mutex_lock(&self->mu);
    while (!self->stopping) {
        struct timespec until;
        condvar_deadline(&until, period_ms);
        pthread_cond_timedwait(&self->cond, &self->mu, &until);
        int64_t now = s_mono_ms();
        int cut = 0;
        for (connguard_conn_t *c = self->conns; c; c = c->next) {
            if (atomic_load(&c->waiting) && !c->cut && now >= atomic_load(&c->deadline_ms)) {
                shutdown(c->fd, SHUT_RDWR);
                c->cut = 1;
                cut++;
            }
        }
        self->cut += (uint64_t) cut;
        if (cut)
            log_debug("http.head_late", "cut=%d total=%llu", cut, (unsigned long long) self->cut);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

connguard_t *connguard_new(const connguard_opts_t *opts)
{
    connguard_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (opts)
        self->o = *opts;
    if (self->o.header_timeout_ms <= 0) self->o.header_timeout_ms = 5000;
    if (self->o.max_per_client <= 0) self->o.max_per_client = 64;
    pthread_mutex_init(&self->mu, NULL);
    condvar_init(&self->cond);
    if (pthread_create(&self->reaper, NULL, s_reaper, self) != 0) {
        pthread_mutex_destroy(&self->mu);
        pthread_cond_destroy(&self->cond);
        free(self);
        return NULL;
    }
    return self;
}

void connguard_destroy(connguard_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    connguard_t *self = *self_p;
    *self_p = NULL;
    pthread_mutex_lock(&self->mu);
    self->stopping = 1;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->mu);
    pthread_join(self->reaper, NULL);
    while (self->conns) {               /* none should be left; free them anyway */
        connguard_conn_t *c = self->conns;
        self->conns = c->next;
        free(c);
    }
    for (int i = 0; i < S_BUCKETS; i++)
        while (self->clients[i]) {
            s_client_t *c = self->clients[i];
            self->clients[i] = c->next;
            free(c);
        }
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cond);
    free(self);
}

connguard_conn_t *connguard_open(connguard_t *self, const struct sockaddr *peer, int fd, int *refused)
{
    *refused = 0;
    netaddr_t addr = { 0 };
    int known = netaddr_from_sockaddr(peer, &addr) == 0;
    netaddr_t key = netaddr_key(&addr);
    int exempt = !known || netlist_contains(&self->o.trusted, &addr);
    connguard_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->key = key;
    pthread_mutex_lock(&self->mu);
    if (!exempt) {
        s_client_t *cl = s_client(self, &key, 1);
        if (cl && cl->open >= self->o.max_per_client) {
            self->refused++;
            int64_t now = s_mono_ms();
            if (now - self->refused_logged_ms >= 1000) {   /* at most one line a second */
                char text[NETADDR_TEXT];
                netaddr_key_text(&key, text);
                log_warn("http.conn_refused", "client=%s open=%d limit=%d refused_total=%llu", text, cl->open,
                         self->o.max_per_client, (unsigned long long) self->refused);
                self->refused_logged_ms = now;
            }
            pthread_mutex_unlock(&self->mu);
            free(c);
            *refused = 1;
            return NULL;
        }
        if (cl) {
            cl->open++;
            c->counted = 1;
        }
    }
    c->waiting = 1;
    c->deadline_ms = s_mono_ms() + self->o.header_timeout_ms;
    c->next = self->conns;
    if (self->conns)
        self->conns->prev = c;
    self->conns = c;
    self->open++;
    pthread_mutex_unlock(&self->mu);
    return c;
}

/* The two marks of every request take no lock (the connection is in the list until
 * connguard_close): a head that arrives just as the reaper looks may be cut or not, as it would be
 * a moment either side under a lock. */
void connguard_head_done(connguard_t *self, connguard_conn_t *c)
{
    (void) self;
    if (c)
        atomic_store(&c->waiting, 0);
}

void connguard_idle(connguard_t *self, connguard_conn_t *c)
{
    if (!c)
        return;
    atomic_store(&c->deadline_ms, s_mono_ms() + self->o.header_timeout_ms);
    atomic_store(&c->waiting, 1);
}

void connguard_close(connguard_t *self, connguard_conn_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    connguard_conn_t *c = *c_p;
    *c_p = NULL;
    pthread_mutex_lock(&self->mu);
    if (c->prev) c->prev->next = c->next; else self->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    self->open--;
    if (c->counted)
        s_client_drop(self, &c->key);
    pthread_mutex_unlock(&self->mu);
    free(c);
}

int connguard_open_count(connguard_t *self)
{
    pthread_mutex_lock(&self->mu);
    int n = self->open;
    pthread_mutex_unlock(&self->mu);
    return n;
}

uint64_t connguard_cut_count(connguard_t *self)
{
    pthread_mutex_lock(&self->mu);
    uint64_t n = self->cut;
    pthread_mutex_unlock(&self->mu);
    return n;
}

uint64_t connguard_refused_count(connguard_t *self)
{
    pthread_mutex_lock(&self->mu);
    uint64_t n = self->refused;
    pthread_mutex_unlock(&self->mu);
    return n;
}

int connguard_fit_nofile(int max_connections, int reserve_fds)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return max_connections;
    rlim_t want = (rlim_t) max_connections + (rlim_t) reserve_fds;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
        else if (rl.rlim_cur > old)
            log_info("http.nofile_raised", "from=%llu to=%llu", (unsigned long long) old,
                     (unsigned long long) rl.rlim_cur);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return max_connections;
    long fit = (long) rl.rlim_cur - reserve_fds;
    if (fit < 16)
        fit = 16;
    log_warn("http.connection_limit_lowered", "wanted=%d limit=%ld nofile=%llu reserve=%d", max_connections, fit,
             (unsigned long long) rl.rlim_cur, reserve_fds);
    return (int) fit;
}
