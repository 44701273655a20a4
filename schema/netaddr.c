/* netaddr.c — see netaddr.h. Parsing is inet_pton's, on a bounded copy of the text. */
#include "schema/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CHAIN_MAX 64   /* X-Forwarded-For entries looked at, from the right */

static const uint8_t s_v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void s_unmap(netaddr_t *a)
{
    if (a->v6 && memcmp(a->b, s_v4_mapped, sizeof s_v4_mapped) == 0) {
        memmove(a->b, a->b + 12, 4);
        memset(a->b + 4, 0, 12);
        a->v6 = 0;
    }
}

static int s_digits_only(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int netaddr_parse(const char *text, size_t len, int allow_port, netaddr_t *out)
{
    if (!text)
        return -1;
    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= 64)
        return -1;
    char buf[64];
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len))
        return -1;
    char *s = buf;
    if (s[0] == '[') {                        /* [v6] or [v6]:port */
        char *close = strchr(s, ']');
        if (!close)
            return -1;
        if (close[1] != '\0') {
            if (!allow_port || close[1] != ':' || !s_digits_only(close + 2, strlen(close + 2)))
                return -1;
        }
        *close = '\0';
        s++;
        netaddr_t a = { .v6 = 1 };
        if (inet_pton(AF_INET6, s, a.b) != 1)
            return -1;
        s_unmap(&a);
        *out = a;
        return 0;
    }
    char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':') == NULL) {   /* exactly one ':': IPv4 with a port */
        if (!allow_port || !s_digits_only(colon + 1, strlen(colon + 1)))
            return -1;
        *colon = '\0';
    }
    netaddr_t a = { 0 };
    if (inet_pton(AF_INET, s, a.b) == 1) {
        *out = a;
        return 0;
    }
    a.v6 = 1;
    if (inet_pton(AF_INET6, s, a.b) != 1)
        return -1;
    s_unmap(&a);
    *out = a;
    return 0;
}

int netaddr_from_sockaddr(const struct sockaddr *sa, netaddr_t *out)
{
    if (!sa)
        return -1;
    netaddr_t a = { 0 };
    if (sa->sa_family == AF_INET) {
        memcpy(a.b, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        a.v6 = 1;
        memcpy(a.b, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr, 16);
        s_unmap(&a);
    } else {
        return -1;
    }
    *out = a;
    return 0;
}

void netaddr_format(const netaddr_t *a, char out[NETADDR_TEXT])
{
    if (!inet_ntop(a->v6 ? AF_INET6 : AF_INET, a->b, out, NETADDR_TEXT))
        snprintf(out, NETADDR_TEXT, "?");
}

netaddr_t netaddr_key(const netaddr_t *a)
{
    netaddr_t k = *a;
    if (k.v6)
        memset(k.b + 8, 0, 8);
    else
        memset(k.b + 4, 0, 12);
    return k;
}

void netaddr_key_text(const netaddr_t *a, char out[NETADDR_TEXT])
{
    netaddr_t k = netaddr_key(a);
    netaddr_format(&k, out);
    if (k.v6) {
        size_t n = strlen(out);
        snprintf(out + n, NETADDR_TEXT - n, "/64");
    }
}

int netaddr_equal(const netaddr_t *a, const netaddr_t *b)
{
    return a->v6 == b->v6 && memcmp(a->b, b->b, a->v6 ? 16 : 4) == 0;
}

/* 1 if the first prefix bits of a and net agree. */
static int s_in(const netcidr_t *c, const netaddr_t *a)
{
    if (c->net.v6 != a->v6)
        return 0;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->net.b, a->b, (size_t) full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t) (0xff << (8 - rest));
    return (c->net.b[full] & mask) == (a->b[full] & mask);
}

int netlist_contains(const netlist_t *list, const netaddr_t *a)
{
    for (int i = 0; list && i < list->count; i++)
        if (s_in(&list->e[i], a))
            return 1;
    return 0;
}

/* One entry "addr" or "addr/prefix" (text of n bytes). 0, or -1. */
static int s_cidr(const char *text, size_t n, netcidr_t *out)
{
    const char *slash = memchr(text, '/', n);
    size_t alen = slash ? (size_t) (slash - text) : n;
    netcidr_t c = { 0 };
    if (netaddr_parse(text, alen, 0, &c.net) != 0)
        return -1;
    int max = c.net.v6 ? 128 : 32;
    c.prefix = max;
    if (slash) {
        const char *p = slash + 1;
        size_t plen = n - alen - 1;
        if (plen == 0 || plen > 3)
            return -1;
        int v = 0;
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
            v = v * 10 + (p[i] - '0');
        }
        /* a mapped IPv4 written as IPv6 with a /96+ prefix counts in IPv4 bits */
        if (!c.net.v6 && memchr(text, ':', alen))
            v -= 96;
        if (v < 0 || v > max)
            return -1;
        c.prefix = v;
    }
    /* clear the host bits so that matching compares networks */
    int full = c.prefix / 8, rest = c.prefix % 8;
    if (full < 16) {
        if (rest)
            c.net.b[full] &= (uint8_t) (0xff << (8 - rest));
        memset(c.net.b + full + (rest ? 1 : 0), 0, (size_t) (16 - full - (rest ? 1 : 0)));
    }
    *out = c;
    return 0;
}

int netlist_parse(const char *text, netlist_t *out, char *err, size_t errlen)
{
    netlist_t l;
    memset(&l, 0, sizeof l);
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ", \t");
        if (l.count >= NETLIST_MAX) {
            snprintf(err, errlen, "at most %d entries", NETLIST_MAX);
            return -1;
        }
        if (s_cidr(p, n, &l.e[l.count]) != 0) {
            snprintf(err, errlen, "'%.*s' is not an address or CIDR (e.g. 10.0.0.0/8, ::1)", (int) (n > 60 ? 60 : n), p);
            return -1;
        }
        l.count++;
        p += n;
    }
    *out = l;
    return 0;
}

void netaddr_client(const netaddr_t *peer, const netlist_t *trusted, const char *xff, const char *x_real_ip,
                    netaddr_t *client)
{
    *client = *peer;
    if (!trusted || trusted->count == 0 || !netlist_contains(trusted, peer))
        return;
    if (xff && *xff) {
        const char *end = xff + strlen(xff);
        for (int hops = 0; end > xff && hops < S_CHAIN_MAX; hops++) {
            const char *start = end;
            while (start > xff && start[-1] != ',')
                start--;
            netaddr_t a;
            if (netaddr_parse(start, (size_t) (end - start), 1, &a) != 0)
                return;            /* junk: the last trusted hop is as far as we can believe */
            *client = a;
            if (!netlist_contains(trusted, &a))
                return;            /* the first untrusted hop from the right: the client */
            end = start > xff ? start - 1 : start;
        }
        return;
    }
    netaddr_t a;
    if (x_real_ip && netaddr_parse(x_real_ip, strlen(x_real_ip), 1, &a) == 0)
        *client = a;
}
