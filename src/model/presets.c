/* The models --model names, with how Keras' examples train them, and
 * convnet-bn, this project's recipe for 99.5% on MNIST (README: Layers). */
#include <stdio.h>
#include <string.h>

#include "model.h"

static const tr_model_preset presets[] = {
    {"mlp", "dense(128,relu),dense(32,relu),dense(%d,softmax)", 32, 0.2, 25, NULL, 0, NULL, 0},
    {"convnet", "conv2d(32,3,relu),maxpool2d(2),conv2d(64,3,relu),maxpool2d(2),flatten,"
                "dropout(0.5),dense(%d,softmax)", 128, 0.1, 15, NULL, 0, NULL, 0},
    {"convnet-bn", "random_rotation(0.03,constant),random_translation(0.1,0.1,constant),"
                   "random_zoom(0.1,constant),conv2d(32,3),batchnorm,relu,conv2d(32,3),"
                   "batchnorm,relu,maxpool2d(2),conv2d(64,3),batchnorm,relu,conv2d(64,3),"
                   "batchnorm,relu,maxpool2d(2),flatten,dropout(0.25),dense(%d,softmax)",
     128, 0.1, 20, "adamw", 3e-3, "onecycle", 0.1},
};

int tr_model_preset_find(const char *name, const tr_model_preset **p, tr_error *err)
{
    for (size_t k = 0; k < sizeof presets / sizeof *presets; k++)
        if (strcmp(name, presets[k].name) == 0) {
            *p = &presets[k];
            return 0;
        }
    return tr_error_set(err, "no model named '%s' (mlp, convnet or convnet-bn)", name);
}

int tr_model_preset_layers(const tr_model_preset *p, int classes, char *buf, size_t size)
{
    return snprintf(buf, size, p->layers, classes) < (int)size ? 0 : -1;
}
