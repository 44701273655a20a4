/* test_netaddr.c — client addresses (schema/netaddr.h): parsing with and without ports, IPv4-mapped
 * IPv6, the /64 key, CIDR lists, and the client behind trusted proxies (rightmost untrusted hop,
 * junk stops the walk, untrusted peers' headers ignored). */
#include <stdio.h>
#include <string.h>

#include "schema/netaddr.h"
#include "tests/check.h"

static const char *s_text(const netaddr_t *a)
{
    static char buf[NETADDR_TEXT];
    netaddr_format(a, buf);
    return buf;
}

static netaddr_t s_ip(const char *t)
{
    netaddr_t a;
    memset(&a, 0, sizeof a);
    CHECK_EQ_INT(netaddr_parse(t, strlen(t), 1, &a), 0);
    return a;
}

static void test_parse_accepts_addresses_and_refuses_the_rest(void)
{
    netaddr_t a;
    const char *good[][2] = {
        { "192.0.2.1", "192.0.2.1" },           { " 10.0.0.1\t", "10.0.0.1" },
        { "2001:db8::1", "2001:db8::1" },       { "[2001:db8::2]", "2001:db8::2" },
        { "::ffff:192.0.2.9", "192.0.2.9" },    { "[::ffff:10.1.2.3]", "10.1.2.3" },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_EQ_INT(netaddr_parse(good[i][0], strlen(good[i][0]), 0, &a), 0);
        CHECK_EQ_STR(s_text(&a), good[i][1]);
    }
    const char *bad[] = { "", " ", "1.2.3", "256.1.1.1", "1.2.3.4.5", "example.com", "2001:db8::g",
                          "[2001:db8::1", "1.2.3.4/8", "01.2.3.4x", "1.2.3.4:80", "[::1]:80",
                          "1.2.3.4:", "unknown", "::1%eth0",
                          "1234567890123456789012345678901234567890123456789012345678901234567890" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(netaddr_parse(bad[i], strlen(bad[i]), 0, &a), -1);
    /* with ports allowed */
    CHECK_EQ_INT(netaddr_parse("1.2.3.4:80", 10, 1, &a), 0);
    CHECK_EQ_STR(s_text(&a), "1.2.3.4");
    CHECK_EQ_INT(netaddr_parse("[::1]:8080", 10, 1, &a), 0);
    CHECK_EQ_STR(s_text(&a), "::1");
    CHECK_EQ_INT(netaddr_parse("1.2.3.4:x", 9, 1, &a), -1);
    CHECK_EQ_INT(netaddr_parse("1.2.3.4:123456", 14, 1, &a), -1);
    /* a NUL inside the given length is refused */
    CHECK_EQ_INT(netaddr_parse("1.2.3.4\0" "5", 9, 0, &a), -1);
}

static void test_key_is_the_ipv4_address_or_the_ipv6_64(void)
{
    char k[NETADDR_TEXT];
    netaddr_t a = s_ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    netaddr_key_text(&a, k);
    CHECK_EQ_STR(k, "2001:db8:1:2::/64");
    netaddr_t b = s_ip("2001:db8:1:2::7");
    netaddr_t ka = netaddr_key(&a), kb = netaddr_key(&b);
    CHECK(netaddr_equal(&ka, &kb));
    netaddr_t c = s_ip("2001:db8:1:3::7");
    netaddr_t kc = netaddr_key(&c);
    CHECK(!netaddr_equal(&ka, &kc));
    netaddr_t d = s_ip("192.0.2.77");
    netaddr_key_text(&d, k);
    CHECK_EQ_STR(k, "192.0.2.77");
    netaddr_t e = s_ip("::ffff:192.0.2.77");
    CHECK(netaddr_equal(&d, &e));
}

static void test_cidr_lists(void)
{
    netlist_t l;
    char err[160];
    CHECK_EQ_INT(netlist_parse("10.0.0.0/8, 192.0.2.7 ,2001:db8::/32\t::1", &l, err, sizeof err), 0);
    CHECK_EQ_INT(l.count, 4);
    netaddr_t in[] = { s_ip("10.200.3.4"), s_ip("192.0.2.7"), s_ip("2001:db8:ffff::1"), s_ip("::1"),
                       s_ip("::ffff:10.0.0.1") };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        CHECK_EQ_INT(netlist_contains(&l, &in[i]), 1);
    netaddr_t out[] = { s_ip("11.0.0.1"), s_ip("192.0.2.8"), s_ip("2001:db9::1"), s_ip("::2") };
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        CHECK_EQ_INT(netlist_contains(&l, &out[i]), 0);
    CHECK_EQ_INT(netlist_parse("", &l, err, sizeof err), 0);
    CHECK_EQ_INT(l.count, 0);
    CHECK_EQ_INT(netlist_parse("172.16.0.0/12", &l, err, sizeof err), 0);
    netaddr_t edge[] = { s_ip("172.31.255.255"), s_ip("172.32.0.0") };
    CHECK_EQ_INT(netlist_contains(&l, &edge[0]), 1);
    CHECK_EQ_INT(netlist_contains(&l, &edge[1]), 0);
    CHECK_EQ_INT(netlist_parse("0.0.0.0/0", &l, err, sizeof err), 0);
    CHECK_EQ_INT(netlist_contains(&l, &edge[1]), 1);
    const char *bad[] = { "10.0.0.0/33", "10.0.0.0/", "::1/129", "nginx", "10.0.0.0/8/8", "10.0.0.0/-1",
                          "1.2.3.4:80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_EQ_INT(netlist_parse(bad[i], &l, err, sizeof err), -1);
        CHECK(err[0] != '\0');
    }
}

static void test_client_is_the_rightmost_untrusted_hop(void)
{
    netlist_t trusted;
    char err[160];
    CHECK_EQ_INT(netlist_parse("127.0.0.1, 10.0.0.0/8", &trusted, err, sizeof err), 0);
    netaddr_t proxy = s_ip("127.0.0.1"), c;
    struct { const char *xff, *real, *want; } cases[] = {
        { "203.0.113.5", NULL, "203.0.113.5" },
        { "6.6.6.6, 203.0.113.5", NULL, "203.0.113.5" },             /* the client's own prefix ignored */
        { "6.6.6.6,203.0.113.5, 10.1.1.1", NULL, "203.0.113.5" },    /* through a second trusted proxy */
        { "10.2.2.2, 10.1.1.1", NULL, "10.2.2.2" },                   /* all trusted: the leftmost */
        { "junk, 203.0.113.5", NULL, "203.0.113.5" },                 /* junk left of the client: unread */
        { "203.0.113.5, junk", NULL, "127.0.0.1" },                   /* junk from a hop: the proxy itself */
        { "6.6.6.6, junk, 10.1.1.1", NULL, "10.1.1.1" },              /* the last trusted hop */
        { "[2001:db8::5]:4711", NULL, "2001:db8::5" },
        { "203.0.113.5:4711", NULL, "203.0.113.5" },
        { "", NULL, "127.0.0.1" },
        { NULL, "198.51.100.3", "198.51.100.3" },                     /* X-Real-IP without XFF */
        { NULL, "bogus", "127.0.0.1" },
        { "203.0.113.5", "198.51.100.3", "203.0.113.5" },             /* XFF wins */
        { ",,,", NULL, "127.0.0.1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        netaddr_client(&proxy, &trusted, cases[i].xff, cases[i].real, &c);
        if (strcmp(s_text(&c), cases[i].want) != 0)
            fprintf(stderr, "  case %zu: xff=%s -> %s, expected %s\n", i, cases[i].xff ? cases[i].xff : "(none)",
                    s_text(&c), cases[i].want);
        CHECK_EQ_STR(s_text(&c), cases[i].want);
    }
    /* a peer that is not trusted is the client, whatever it says */
    netaddr_t direct = s_ip("198.51.100.200");
    netaddr_client(&direct, &trusted, "203.0.113.5", "203.0.113.6", &c);
    CHECK_EQ_STR(s_text(&c), "198.51.100.200");
    netaddr_client(&proxy, NULL, "203.0.113.5", NULL, &c);
    CHECK_EQ_STR(s_text(&c), "127.0.0.1");
    /* a very long chain of trusted hops stops after a bound, at a trusted hop */
    char chain[4096] = "";
    for (int i = 0; i < 200; i++)
        snprintf(chain + strlen(chain), sizeof chain - strlen(chain), "%s10.0.%d.%d", i ? "," : "", i / 250, i % 250);
    netaddr_client(&proxy, &trusted, chain, NULL, &c);
    CHECK(netlist_contains(&trusted, &c));
}

int main(void)
{
    RUN(test_parse_accepts_addresses_and_refuses_the_rest);
    RUN(test_key_is_the_ipv4_address_or_the_ipv6_64);
    RUN(test_cidr_lists);
    RUN(test_client_is_the_rightmost_untrusted_hop);
    return check_done();
}
