/* background.h - ink on a page lit unevenly (background.c). */
#ifndef TRAINER_BACKGROUND_H
#define TRAINER_BACKGROUND_H

#include "error.h"
#include "image.h"

/* When the opaque picture im's page is unevenly lit, writes its ink as
 * tr_image_ink gives it ([h][w] in [0, 1]) with the page's light removed, and
 * returns 1; 0 when the page is evenly lit, has no ink once flattened, or
 * the picture has transparent pixels (one page level serves; ink holds
 * scratch); -1 with err set.  light: whether the page is light (dark ink). */
int tr_ink_on_uneven_page(const tr_image *im, int light, float *ink, tr_error *err);

#endif
