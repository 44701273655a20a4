/* qr.h — QR codes as SVG, from libqrencode.
 *
 * Level M, byte/auto mode (QRcode_encodeString, case-sensitive), a 4-module quiet zone, and one
 * <path> that draws every dark module (runs of a row merged into one rectangle), in a viewBox of
 * (modules + 8) units square so the picture scales to any size without blur. */
#ifndef KASA_WEB_QR_H
#define KASA_WEB_QR_H

#include <stddef.h>

#define QR_QUIET 4

/* The SVG for text (1..1024 bytes). Returns a malloc'd NUL-terminated document (caller frees) with
 * its length in *len (may be NULL), or NULL if text is empty, too long or cannot be encoded.
 * If modules is not NULL it receives the symbol's width in modules (21 for version 1, +4 per version). */
char *qr_svg(const char *text, size_t *len, int *modules);

/* The same symbol for a terminal: UTF-8 half blocks, two module rows per line, light modules (and
 * the quiet zone, 2 modules here) drawn as blocks so it scans on a dark terminal (as `qrencode -t
 * UTF8`). malloc'd text ending in a newline, or NULL as qr_svg. */
char *qr_terminal(const char *text);

#endif
