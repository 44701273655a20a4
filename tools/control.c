/* control.c — see control.h. */
#include "tools/control.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#undef LOG_DEBUG /* <syslog.h>, via czmq, would shadow tools/log.h's levels */
#undef LOG_INFO
#include "actors/mt5.h"
#include <sodium.h>
#include "journal/journal.h"
#include "schema/log.h"
#include "tools/commands.h"

#define CONTROL_MAX_FRAMES 8
#define CONTROL_FRAME_MAX 256

typedef struct {
    char name[32];
    control_verb_fn *fn;
    void *arg;
} s_verb_t;

typedef struct {
    char endpoint[300];
    pipeline_t *pipeline;
    admins_t *admins;
    journal_t *journal;
    char err[512];
    pthread_mutex_t verbs_lock;
    s_verb_t verbs[CONTROL_MAX_VERBS];
    int nverbs;
} control_args_t;

struct control_t {
    zactor_t *actor;
    control_args_t args;   /* read by the actor for its whole life */
};

static void s_reply(zsock_t *rep, const char *status, const char *text)
{
    zstr_sendx(rep, status, text, NULL);
}

/* Runs an added verb, if f[0] names one. Returns 1 when it was one (and answered). */
static int s_added_verb(zsock_t *rep, control_args_t *a, char *const *f, int n)
{
    control_verb_fn *fn = NULL;
    void *arg = NULL;
    pthread_mutex_lock(&a->verbs_lock);
    for (int i = 0; i < a->nverbs; i++)
        if (strcmp(a->verbs[i].name, f[0]) == 0) {
            fn = a->verbs[i].fn;
            arg = a->verbs[i].arg;
        }
    pthread_mutex_unlock(&a->verbs_lock);
    if (!fn)
        return 0;
    char text[1024] = "";
    int rc = fn(arg, f, n, text, sizeof text);
    s_reply(rep, rc == 0 ? "ok" : "error", text);
    return 1;
}

/* "deposit" ACTION TX LOGIN ACTOR ORIGIN REASON: an operator's action (pipeline_admin). */
static void s_deposit(zsock_t *rep, pipeline_t *pipeline, char **f)
{
    int action = desk_action_from_name(f[1]);
    uint64_t login = 0;
    if (action < 0) {
        s_reply(rep, "error", "unknown action");
        return;
    }
    if (f[3][0] && mt5_parse_login(f[3], &login) != 0) {
        s_reply(rep, "error", "LOGIN must be a positive whole number");
        return;
    }
    desk_request_t req = { f[2], (desk_action_t) action, login, f[4], f[5], f[6] };
    char err[256] = "";
    int rc = pipeline_admin(pipeline, &req, err, sizeof err);
    if (rc < 0) {
        log_warn("control.deposit_refused", "tx=%s action=%s actor=%s reason=\"%s\"", f[2], f[1], f[4], err);
        s_reply(rep, "error", err[0] ? err : "refused");
        return;
    }
    char text[400];
    if (rc == 2)   /* cluster mode: the node holding the deposit carries it out */
        snprintf(text, sizeof text, "%s", err);
    else
        desk_describe((desk_action_t) action, rc == 1, f[2], login, text, sizeof text);
    s_reply(rep, "ok", text);
}

/* "admin" VERB NAME ROLE ACTOR ORIGIN: add | reset | disable an admin account. add and reset
 * answer "PASSWORD SECRET" (the one-time password and the TOTP secret) for the command to show. */
static void s_admin(zsock_t *rep, const control_args_t *a, char **f)
{
    char err[256] = "";
    char pw[ADMINS_OTP_LEN] = "", secret[ADMINS_SECRET_LEN] = "";
    int rc = -1;
    if (!a->admins) {
        snprintf(err, sizeof err, "admin accounts are not available here");
    } else if (strcmp(f[1], "add") == 0) {
        int role = admin_role_from_name(f[3]);
        if (role < 0)
            snprintf(err, sizeof err, "unknown role '%s' (viewer, operator, approver, treasurer, owner)", f[3]);
        else
            rc = admins_add(a->admins, a->journal, f[2], (admin_role_t) role, f[4], f[5], pw, secret, err, sizeof err);
    } else if (strcmp(f[1], "reset") == 0) {
        rc = admins_reset(a->admins, a->journal, f[2], f[4], f[5], pw, secret, err, sizeof err);
    } else if (strcmp(f[1], "disable") == 0) {
        rc = admins_disable(a->admins, a->journal, f[2], f[4], f[5], err, sizeof err);
    } else {
        snprintf(err, sizeof err, "unknown admin request");
    }
    if (rc != 0) {
        s_reply(rep, "error", err[0] ? err : "refused");
        return;
    }
    char text[128];
    if (pw[0])
        snprintf(text, sizeof text, "%s %s", pw, secret);
    else
        snprintf(text, sizeof text, "disabled %s", f[2]);
    s_reply(rep, "ok", text);
    sodium_memzero(pw, sizeof pw);
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(text, sizeof text);
}

static void s_handle(zsock_t *rep, control_args_t *a, zmsg_t *msg)
{
    pipeline_t *pipeline = a->pipeline;
    char *f[CONTROL_MAX_FRAMES] = { 0 };
    int n = 0;
    int too_long = 0;
    for (zframe_t *fr = zmsg_first(msg); fr && n < CONTROL_MAX_FRAMES; fr = zmsg_next(msg)) {
        if (zframe_size(fr) > CONTROL_FRAME_MAX)
            too_long = 1;
        f[n++] = zframe_strdup(fr);
    }
    if (too_long || n == 0 || zmsg_size(msg) > CONTROL_MAX_FRAMES) {
        s_reply(rep, "error", "malformed request");
    } else if (strcmp(f[0], "ping") == 0) {
        s_reply(rep, "ok", "pong");
    } else if (strcmp(f[0], "link") == 0 && n == 5) {
        uint64_t login;
        char err[256] = "";
        if (mt5_parse_login(f[3], &login) != 0) {
            s_reply(rep, "error", "LOGIN must be a positive whole number");
        } else if (pipeline_link(pipeline, f[1], f[2], login, f[4], err, sizeof err) != 0) {
            log_warn("control.link_refused", "address=%s login=%" PRIu64 " reason=\"%s\"", f[1], login, err);
            s_reply(rep, "error", err[0] ? err : "link refused");
        } else {
            char text[400];
            snprintf(text, sizeof text, "linked %s%s%s to login %" PRIu64, f[1], f[2][0] ? " on " : "", f[2], login);
            log_info("control.linked", "address=%s chain=%s login=%" PRIu64 " actor=%s", f[1], f[2], login, f[4]);
            s_reply(rep, "ok", text);
        }
    } else if (strcmp(f[0], "deposit") == 0 && n == 7) {
        s_deposit(rep, pipeline, f);
    } else if (strcmp(f[0], "admin") == 0 && n == 6) {
        s_admin(rep, a, f);
    } else if (!s_added_verb(rep, a, f, n)) {
        s_reply(rep, "error", "unknown request");
    }
    for (int i = 0; i < n; i++)
        free(f[i]);
}

static void s_actor(zsock_t *pipe, void *arg)
{
    control_args_t *a = arg;
    zsock_t *rep = zsock_new(ZMQ_REP);
    if (!rep || zsock_bind(rep, "%s", a->endpoint) < 0) {
        snprintf(a->err, sizeof a->err, "cannot bind the control socket on %s: %s", a->endpoint,
                 zmq_strerror(zmq_errno()));
        zsock_destroy(&rep);
        zsock_signal(pipe, 1);
        return;
    }
    /* The control socket links addresses to accounts: its owner alone may connect (an ipc socket is
     * made with the umask's mode). It lives in the journal directory (0700) by default, so no one
     * else could reach it in between either. */
    if (strncmp(a->endpoint, "ipc://", 6) == 0 && chmod(a->endpoint + 6, 0600) != 0) {
        snprintf(a->err, sizeof a->err, "cannot restrict the control socket %s: %s", a->endpoint + 6, strerror(errno));
        zsock_destroy(&rep);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_set_linger(rep, 0);
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, rep, NULL);
    for (;;) {
        void *which = zpoller_wait(poller, -1);
        if (which == pipe) {
            zmsg_t *cmd = zmsg_recv(pipe);
            char *verb = cmd ? zmsg_popstr(cmd) : NULL;
            int term = !verb || strcmp(verb, "$TERM") == 0;
            free(verb);
            zmsg_destroy(&cmd);
            if (term)
                break;
        } else if (which == rep) {
            zmsg_t *msg = zmsg_recv(rep);
            if (!msg)
                continue;
            s_handle(rep, a, msg);
            zmsg_destroy(&msg);
        } else if (zpoller_terminated(poller)) {
            break;
        }
    }
    zpoller_destroy(&poller);
    zsock_destroy(&rep);
}

control_t *control_new(const char *endpoint, pipeline_t *pipeline, admins_t *admins, journal_t *journal, char *err,
                       size_t errlen)
{
    control_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!endpoint || strlen(endpoint) >= sizeof self->args.endpoint) {
        snprintf(err, errlen, "control endpoint too long");
        free(self);
        return NULL;
    }
    snprintf(self->args.endpoint, sizeof self->args.endpoint, "%s", endpoint);
    self->args.pipeline = pipeline;
    pthread_mutex_init(&self->args.verbs_lock, NULL);
    self->args.admins = admins;
    self->args.journal = journal;
    /* zactor_new returns after the actor's signal; a failed bind fills err and ends the actor */
    self->actor = zactor_new(s_actor, &self->args);
    if (!self->actor || self->args.err[0]) {
        snprintf(err, errlen, "%s", self->args.err[0] ? self->args.err : "cannot start the control actor");
        zactor_destroy(&self->actor);
        pthread_mutex_destroy(&self->args.verbs_lock);
        free(self);
        return NULL;
    }
    return self;
}

void control_destroy(control_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    control_t *self = *self_p;
    *self_p = NULL;
    zactor_destroy(&self->actor);
    pthread_mutex_destroy(&self->args.verbs_lock);
    free(self);
}

int control_verb(control_t *self, const char *name, control_verb_fn *fn, void *arg)
{
    if (!self || !name || !fn || strlen(name) >= sizeof self->args.verbs[0].name)
        return -1;
    control_args_t *a = &self->args;
    pthread_mutex_lock(&a->verbs_lock);
    int slot = -1;
    for (int i = 0; i < a->nverbs; i++)
        if (strcmp(a->verbs[i].name, name) == 0)
            slot = i;
    if (slot < 0 && a->nverbs < CONTROL_MAX_VERBS)
        slot = a->nverbs++;
    if (slot >= 0) {
        snprintf(a->verbs[slot].name, sizeof a->verbs[slot].name, "%s", name);
        a->verbs[slot].fn = fn;
        a->verbs[slot].arg = arg;
    }
    pthread_mutex_unlock(&a->verbs_lock);
    return slot >= 0 ? 0 : -1;
}

int control_request(const char *endpoint, const char *const *frames, int n, int timeout_ms,
                    char *reply, size_t replylen)
{
    zsock_t *req = zsock_new(ZMQ_REQ);
    if (!req) {
        snprintf(reply, replylen, "cannot create a socket");
        return -1;
    }
    zsock_set_linger(req, 0);
    zsock_set_rcvtimeo(req, timeout_ms);
    zsock_set_sndtimeo(req, timeout_ms);
    if (zsock_connect(req, "%s", endpoint) < 0) {
        snprintf(reply, replylen, "cannot connect to %s", endpoint);
        zsock_destroy(&req);
        return -1;
    }
    zmsg_t *msg = zmsg_new();
    for (int i = 0; i < n; i++)
        zmsg_addstr(msg, frames[i]);
    if (zmsg_send(&msg, req) != 0) {
        zmsg_destroy(&msg);
        snprintf(reply, replylen, "no server on %s", endpoint);
        zsock_destroy(&req);
        return -1;
    }
    zmsg_t *ans = zmsg_recv(req);
    int rc = -1;
    if (!ans) {
        snprintf(reply, replylen, "no answer from a server on %s within %d ms", endpoint, timeout_ms);
    } else {
        char *status = zmsg_popstr(ans);
        char *text = zmsg_popstr(ans);
        snprintf(reply, replylen, "%s", text ? text : "");
        rc = status && strcmp(status, "ok") == 0 ? 0 : 1;
        free(status);
        free(text);
        zmsg_destroy(&ans);
    }
    zsock_destroy(&req);
    return rc;
}

int control_or_offline(const char *name, const char *journal_dir, const char *endpoint,
                       int (*offline)(journal_t *journal, void *arg), int (*online)(const char *reply, void *arg),
                       void *arg, const char *const *frames, int n, int timeout_ms)
{
    char err[512];
    journal_t *journal = cmd_journal_open(journal_dir, err, sizeof err);
    if (journal) {
        int rc = offline(journal, arg);
        journal_destroy(&journal);
        return rc;
    }
    if (!strstr(err, "in use")) {
        fprintf(stderr, "kasa %s: cannot open the journal: %s\n", name, err);
        return 1;
    }
    char reply[512];
    int rc = control_request(endpoint, frames, n, timeout_ms, reply, sizeof reply);
    if (rc == 0 && online) {
        rc = online(reply, arg);
        sodium_memzero(reply, sizeof reply);
        return rc;
    }
    if (rc == 0) {
        printf("%s (journaled by the running server)\n", reply);
        return 0;
    }
    if (rc == 1)
        fprintf(stderr, "kasa %s: refused: %s\n", name, reply);
    else
        fprintf(stderr, "kasa %s: the journal is in use (%s) but the server's control socket did not answer: %s\n",
                name, err, reply);
    return 1;
}
