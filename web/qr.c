/* qr.c — QR codes as SVG (see qr.h). */
#include "web/qr.h"

#include <qrencode.h>
#include <stdlib.h>
#include <string.h>

#include "schema/json.h"

#define QR_MAX_TEXT 1024

char *qr_svg(const char *text, size_t *len, int *modules)
{
    if (!text || !*text || strlen(text) > QR_MAX_TEXT)
        return NULL;
    QRcode *code = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
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
