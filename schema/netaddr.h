/* netaddr.h — client addresses: parsing, CIDR lists, the key a client is counted under, and the
 * client behind trusted proxies.
 *
 * A client is counted by its IPv4 address, or by the /64 network of its IPv6 address (one
 * subscriber gets a whole /64, so counting single IPv6 addresses would let a client rotate through
 * 2^64 of them). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address.
 *
 * Behind a reverse proxy every connection comes from the proxy. Only when the peer is in the
 * trusted list are X-Forwarded-For / X-Real-IP believed, and then only as far as they were written
 * by trusted hops: the chain is read from the right (each proxy appends the address it saw) and
 * the first address that is not itself a trusted proxy is the client. Everything to the left of it
 * was written by the client and is ignored. Pure functions, no I/O. */
#ifndef KASA_SCHEMA_NETADDR_H
#define KASA_SCHEMA_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NETADDR_TEXT 48          /* longest text form with NUL ("xxxx:...:xxxx/64") */
#define NETLIST_MAX 32           /* entries in a trusted-proxy list */

typedef struct {
    int v6;                      /* 0: IPv4 in b[0..3]; 1: IPv6 in b[0..15] */
    uint8_t b[16];
} netaddr_t;

typedef struct {
    netaddr_t net;
    int prefix;                  /* bits: 0..32 (IPv4), 0..128 (IPv6) */
} netcidr_t;

typedef struct {
    netcidr_t e[NETLIST_MAX];
    int count;
} netlist_t;

/* Parses an IPv4 or IPv6 address ("1.2.3.4", "2001:db8::1", "[2001:db8::1]"; with allow_port,
 * also "1.2.3.4:80" and "[2001:db8::1]:80"). Surrounding spaces and tabs are skipped.
 * ::ffff:a.b.c.d becomes a.b.c.d. 0, or -1 for anything else (nothing written). */
int netaddr_parse(const char *text, size_t len, int allow_port, netaddr_t *out);
/* From a socket address (AF_INET or AF_INET6). 0, or -1 for another family. */
int netaddr_from_sockaddr(const struct sockaddr *sa, netaddr_t *out);
/* Text form of the address ("1.2.3.4", "2001:db8::1"). */
void netaddr_format(const netaddr_t *a, char out[NETADDR_TEXT]);
/* The key a client is counted under: the IPv4 address, or the IPv6 /64 with the host bits
 * cleared ("2001:db8:1:2::/64"). */
void netaddr_key_text(const netaddr_t *a, char out[NETADDR_TEXT]);
/* The same as an address: IPv6 host bits cleared. Equal keys mean the same client. */
netaddr_t netaddr_key(const netaddr_t *a);
int netaddr_equal(const netaddr_t *a, const netaddr_t *b);

/* Parses a comma- or space-separated list of addresses and CIDRs ("10.0.0.0/8, ::1, 192.0.2.7").
 * An empty text is an empty list. 0, or -1 with the offending entry named in err. */
int netlist_parse(const char *text, netlist_t *out, char *err, size_t errlen);
/* 1 if a is inside one of the list's networks, else 0. */
int netlist_contains(const netlist_t *list, const netaddr_t *a);

/* The client behind the connection from peer. If peer is not trusted (or trusted is NULL or
 * empty), peer itself. Otherwise the rightmost address of the X-Forwarded-For chain (xff, the
 * headers joined by commas; may be NULL) that is not a trusted proxy; if every address there is
 * trusted, the leftmost; without X-Forwarded-For, X-Real-IP (may be NULL). An entry that is not
 * an address stops the walk: the last trusted hop seen is then the client (a proxy never writes
 * junk, so junk means the chain cannot be believed further). Always fills *client. */
void netaddr_client(const netaddr_t *peer, const netlist_t *trusted, const char *xff, const char *x_real_ip,
                    netaddr_t *client);

#endif
