/* qr.c — QR codes as SVG (see qr.h). */
#include "web/qr.h"

#include <qrencode.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json.h"

#define QR_MAX_TEXT 1024

/* The symbol for text, or NULL (empty, too long, cannot be encoded). */
static QRcode *s_encode(const char *text)
{
    if (!text || !*text || strlen(text) > QR_MAX_TEXT)
        return NULL;
    return QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
}

char *qr_svg(const char *text, size_t *len, int *modules)
{
    QRcode *code = s_encode(text);
    if (!code)
        return NULL;
    int width = code->width;
    int size = width + 2 * QR_QUIET;
    jbuf_t b;
    jbuf_init(&b);
    jbuf_printf(&b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                "shape-rendering=\"crispEdges\" role=\"img\">"
                "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                size, size, size, size);
    /* Each row: runs of dark modules, one rectangle per run. Bit 0 of a module byte is "dark". */
    for (int y = 0; y < width; y++) {
        const unsigned char *row = code->data + (size_t) y * (size_t) width;
        int x = 0;
        while (x < width) {
            if (!(row[x] & 1)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < width && (row[x + run] & 1))
                run++;
            jbuf_printf(&b, "M%d %dh%dv1h-%dz", x + QR_QUIET, y + QR_QUIET, run, run);
            x += run;
        }
    }
    jbuf_puts(&b, "\"/></svg>\n");
    if (modules)
        *modules = width;
    QRcode_free(code);
    if (len)
        *len = b.len;
    return jbuf_take(&b);
}

#define QR_TERM_QUIET 2

char *qr_terminal(const char *text)
{
    QRcode *code = s_encode(text);
    if (!code)
        return NULL;
    int width = code->width, size = width + 2 * QR_TERM_QUIET;
    jbuf_t b;
    jbuf_init(&b);
    for (int y = 0; y < size; y += 2) {
        for (int x = 0; x < size; x++) {
            int light[2];
            for (int k = 0; k < 2; k++) {
                int my = y + k - QR_TERM_QUIET, mx = x - QR_TERM_QUIET;
                int inside = my >= 0 && my < width && mx >= 0 && mx < width;
                light[k] = !(inside && (code->data[(size_t) my * (size_t) width + (size_t) mx] & 1));
                if (y + k >= size)
                    light[k] = 0;   /* below the symbol: the terminal's own background */
            }
            jbuf_puts(&b, light[0] && light[1] ? "\u2588" : light[0] ? "\u2580" : light[1] ? "\u2584" : " ");
        }
        jbuf_puts(&b, "\n");
    }
    QRcode_free(code);
    return jbuf_take(&b);
}
