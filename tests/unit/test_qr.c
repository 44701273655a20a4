/* test_qr.c — QR SVG: a well-formed document, the right size for a known version, and a path
 * that redraws exactly the symbol (finder and timing patterns checked on the redrawn matrix). */
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "web/qr.h"

#define TRON_ADDR "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8"   /* 34 characters */

/* Redraws the path "M{x} {y}h{n}v1h-{n}z..." into grid (size x size). Returns the number of
 * rectangles, or -1 if the path is not in that form. */
static int s_redraw(const char *svg, unsigned char *grid, int size)
{
    const char *d = strstr(svg, " d=\"");
    if (!d)
        return -1;
    d += 4;
    int rects = 0;
    while (*d == 'M') {
        int x, y, n, n2, used;
        if (sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &n, &n2, &used) != 4 || n != n2 || n < 1)
            return -1;
        if (x < 0 || y < 0 || x + n > size || y >= size)
            return -1;
        for (int i = 0; i < n; i++) {
            if (grid[y * size + x + i])
                return -1;           /* overlapping rectangles */
            grid[y * size + x + i] = 1;
        }
        rects++;
        d += used;
    }
    return *d == '"' ? rects : -1;
}

static int s_dark(const unsigned char *g, int size, int x, int y)
{
    return g[(y + QR_QUIET) * size + x + QR_QUIET];
}

/* The 7x7 finder at (x0, y0): dark ring, light ring, dark 3x3 centre. */
static int s_finder_ok(const unsigned char *g, int size, int x0, int y0)
{
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 7; x++) {
            int ring = (x == 0 || x == 6 || y == 0 || y == 6);
            int inner = (x >= 2 && x <= 4 && y >= 2 && y <= 4);
            if (s_dark(g, size, x0 + x, y0 + y) != (ring || inner))
                return 0;
        }
    return 1;
}

static void test_qr_svg_is_wellformed_with_viewbox(void)
{
    size_t len = 0;
    int modules = 0;
    char *svg = qr_svg(TRON_ADDR, &len, &modules);
    CHECK(svg != NULL);
    if (!svg)
        return;
    CHECK_EQ_INT(len, strlen(svg));
    CHECK(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    CHECK(strstr(svg, "</svg>") != NULL);
    /* 34 bytes at level M need version 3: 29 modules, plus the quiet zone: 37 */
    CHECK_EQ_INT(modules, 29);
    CHECK(strstr(svg, "viewBox=\"0 0 37 37\"") != NULL);
    /* exactly one path */
    const char *p = strstr(svg, "<path");
    CHECK(p != NULL && strstr(p + 1, "<path") == NULL);
    free(svg);
}

static void test_qr_path_redraws_the_symbol(void)
{
    int modules = 0;
    char *svg = qr_svg(TRON_ADDR, NULL, &modules);
    CHECK(svg != NULL);
    if (!svg)
        return;
    int size = modules + 2 * QR_QUIET;
    unsigned char *g = calloc((size_t) (size * size), 1);
    CHECK(s_redraw(svg, g, size) > 0);
    /* quiet zone is empty */
    int quiet_dark = 0;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
            if ((x < QR_QUIET || y < QR_QUIET || x >= size - QR_QUIET || y >= size - QR_QUIET) && g[y * size + x])
                quiet_dark++;
    CHECK_EQ_INT(quiet_dark, 0);
    /* three finder patterns, and the timing patterns alternate between them */
    CHECK(s_finder_ok(g, size, 0, 0));
    CHECK(s_finder_ok(g, size, modules - 7, 0));
    CHECK(s_finder_ok(g, size, 0, modules - 7));
    int timing_ok = 1;
    for (int i = 8; i < modules - 8; i++) {
        timing_ok &= s_dark(g, size, i, 6) == (i % 2 == 0);
        timing_ok &= s_dark(g, size, 6, i) == (i % 2 == 0);
    }
    CHECK(timing_ok);
    /* every module matches libqrencode's own symbol at level M */
    QRcode *code = QRcode_encodeString(TRON_ADDR, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    CHECK(code != NULL && code->width == modules);
    int diff = 0;
    for (int y = 0; code && y < modules; y++)
        for (int x = 0; x < modules; x++)
            diff += ((code->data[y * modules + x] & 1) != 0) != s_dark(g, size, x, y);
    CHECK_EQ_INT(diff, 0);
    /* the format information says level M: its two top bits (14, 13), at (0,8) and (1,8) under the
     * top-left finder, are M's 00 masked with 10 (the mask 101010000010010) */
    int ec_bits = (s_dark(g, size, 0, 8) << 1) | s_dark(g, size, 1, 8);
    CHECK_EQ_INT(ec_bits, 0x2);
    if (code)
        QRcode_free(code);
    free(g);
    free(svg);
}

static void test_qr_versions_grow_with_text(void)
{
    int m1 = 0, m2 = 0;
    char *a = qr_svg("T", NULL, &m1);
    char long_text[300];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = 0;
    char *b = qr_svg(long_text, NULL, &m2);
    CHECK_EQ_INT(m1, 21);                 /* version 1 */
    CHECK(m2 > 21 && (m2 - 17) % 4 == 0); /* 17 + 4 * version */
    free(a);
    free(b);
}

static void test_qr_refuses_empty_and_huge(void)
{
    CHECK(qr_svg("", NULL, NULL) == NULL);
    CHECK(qr_svg(NULL, NULL, NULL) == NULL);
    char *huge = malloc(2000);
    memset(huge, 'a', 1999);
    huge[1999] = 0;
    CHECK(qr_svg(huge, NULL, NULL) == NULL);
    free(huge);
}

/* The terminal form read back: each character is two module rows (upper, lower), light = block. */
static void test_qr_terminal_redraws_the_symbol_with_light_blocks(void)
{
    const char *uri = "otpauth://totp/kasa:ayse?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=kasa&algorithm=SHA1&"
                      "digits=6&period=30";
    char *text = qr_terminal(uri);
    QRcode *code = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    CHECK(text && code);
    if (!text || !code) {
        free(text);
        QRcode_free(code);
        return;
    }
    int w = code->width, size = w + 4, row = 0, bad = 0;
    for (char *line = text; *line; row++) {
        char *end = strchr(line, '\n');
        CHECK(end != NULL);
        if (!end)
            break;
        int x = 0;
        for (char *p = line; p < end; x++) {
            int up, down;
            if (*p == ' ') { up = 0; down = 0; p += 1; }
            else if (!strncmp(p, "\u2588", 3)) { up = 1; down = 1; p += 3; }
            else if (!strncmp(p, "\u2580", 3)) { up = 1; down = 0; p += 3; }
            else if (!strncmp(p, "\u2584", 3)) { up = 0; down = 1; p += 3; }
            else { bad++; break; }
            for (int k = 0; k < 2; k++) {
                int y = 2 * row + k, light = k ? down : up;
                if (y >= size)
                    continue;
                int my = y - 2, mx = x - 2;
                int dark = my >= 0 && my < w && mx >= 0 && mx < w && (code->data[my * w + mx] & 1);
                if (light == dark)
                    bad++;
            }
        }
        CHECK_EQ_INT(x, size);
        line = end + 1;
    }
    CHECK_EQ_INT(row, (size + 1) / 2);
    CHECK_EQ_INT(bad, 0);
    CHECK(qr_terminal("") == NULL);
    free(text);
    QRcode_free(code);
}

int main(void)
{
    RUN(test_qr_svg_is_wellformed_with_viewbox);
    RUN(test_qr_path_redraws_the_symbol);
    RUN(test_qr_versions_grow_with_text);
    RUN(test_qr_refuses_empty_and_huge);
    RUN(test_qr_terminal_redraws_the_symbol_with_light_blocks);
    return check_done();
}
