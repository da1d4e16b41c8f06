"""Keras 3's EarlyStopping, ModelCheckpoint(save_best_only=True) and
ReduceLROnPlateau, transcribed from Keras' own code (keras/src/callbacks/) as
plain Python over a list of epoch logs, independently of trainer's C code.
Epochs are 0-based inside, as in Keras, and reported 1-based."""
import math

import numpy as np


def _less(a, b):
    return bool(np.less(a, b))


def _greater(a, b):
    return bool(np.greater(a, b))


class EarlyStopping:
    def __init__(self, monitor, min_delta, patience, restore_best_weights):
        self.monitor, self.patience = monitor, patience
        self.restore_best_weights = restore_best_weights
        self.min_delta = abs(min_delta)
        # mode="auto": the metric's direction; loss goes down, accuracy up.
        name = monitor[4:] if monitor.startswith("val_") else monitor
        self.monitor_op = _less if name == "loss" else _greater
        if self.monitor_op is _less:
            self.min_delta *= -1
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0
        self.best = math.inf if self.monitor_op is _less else -math.inf
        self.stop_training = False

    def _is_improvement(self, monitor_value, reference_value):
        return self.monitor_op(monitor_value - self.min_delta, reference_value)

    def on_epoch_end(self, epoch, logs, weights):
        current = logs.get(self.monitor)
        if current is None:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = weights
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = weights
            self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.stop_training = True


class ModelCheckpoint:
    def __init__(self, monitor):
        self.monitor = monitor
        if "acc" in monitor or monitor.startswith("fmeasure"):
            self.monitor_op, self.best = _greater, -math.inf
        else:
            self.monitor_op, self.best = _less, math.inf
        self.saved = None

    def on_epoch_end(self, epoch, logs, weights):
        current = logs.get(self.monitor)
        if current is not None and self.monitor_op(current, self.best):
            self.best = current
            self.saved = weights
            return True
        return False


class ReduceLROnPlateau:
    def __init__(self, monitor, factor, patience, min_delta, cooldown, min_lr, lr):
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.learning_rate = np.float32(lr)  # the optimizer's float32 variable
        if "acc" not in monitor:
            self.monitor_op = lambda a, b: np.less(a, b - self.min_delta)
            self.best = np.inf
        else:
            self.monitor_op = lambda a, b: np.greater(a, b + self.min_delta)
            self.best = -np.inf
        self.cooldown_counter, self.wait = 0, 0

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs):
        current = logs.get(self.monitor)
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(self.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = old_lr * self.factor
                    new_lr = max(new_lr, self.min_lr)
                    self.learning_rate = np.float32(new_lr)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


def fit(history, monitor, early=None, save_best=False, reduce=None, lr=1e-3):
    """Runs the callbacks over history (a list of dicts of the epoch logs) as
    model.fit would.  early: (patience, min_delta, restore); reduce: (factor,
    patience, min_delta, cooldown, min_lr).  Returns per epoch (1-based) the
    rate used in it, whether it was saved as the best, and at the end the
    epoch training stopped after (0: it did not) and the epoch whose weights
    the model ends with."""
    es = EarlyStopping(monitor, early[1], early[0], early[2]) if early else None
    mc = ModelCheckpoint(monitor) if save_best else None
    rl = ReduceLROnPlateau(monitor, *reduce, lr) if reduce else None
    rates, saves, ran = [], [], 0
    for epoch, logs in enumerate(history):
        ran = epoch + 1
        rates.append(float(rl.learning_rate) if rl else float(np.float32(lr)))
        weights = epoch + 1  # stands for the weights after this epoch
        if es:
            es.on_epoch_end(epoch, logs, weights)
        saves.append(mc.on_epoch_end(epoch, logs, weights) if mc else False)
        if rl:
            rl.on_epoch_end(epoch, logs)
        if es and es.stop_training:
            break
    final = ran
    if es and es.restore_best_weights and es.best_weights is not None:
        final = es.best_weights
    stopped = es.stopped_epoch + 1 if es and es.stopped_epoch > 0 else 0
    return {"rates": rates, "saves": saves, "stopped": stopped, "final": final}
