"""A reader of trainer's binary files, written from docs/formats.md's description
of the formats alone (not from the C code): model.ckpt versions 1 to 4,
training.state versions 1 to 6, and a writer of model.ckpt version 3.  Plain
Python; every field is checked as docs/formats.md says a reader must."""
import math
import struct
import zlib

ORDER_TAG = 0x01020304
KINDS = {1: "dense", 2: "softmax", 3: "conv2d", 4: "maxpool2d", 5: "flatten", 6: "dropout",
         7: "avgpool2d", 8: "global_avgpool2d", 9: "batchnorm", 10: "relu"}
HYPER_WORDS = 7


class Reader:
    def __init__(self, data, at):
        self.data, self.at = data, at

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]


def _check_crc(data):
    if len(data) < 12:
        raise ValueError("too short")
    (stored,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != stored:
        raise ValueError("CRC-32 mismatch")


def _head(data, magic):
    _check_crc(data)
    if data[:8] != magic:
        raise ValueError("bad magic")
    r = Reader(data, 8)
    version, tag, float_size = r.take("III")
    if tag != ORDER_TAG or float_size != 4:
        raise ValueError("byte order or float size")
    return r, version


def _architecture(r):
    """Version 2's block: input shape, classes, layers."""
    h, w, c, classes, n = r.take("5I")
    layers = []
    for _ in range(n):
        kind = r.take("I")
        words = r.take(f"{HYPER_WORDS}I")
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind}")
        if kind == 1:
            if not (words[0] >= 1 and words[1] in (0, 1) and not any(words[2:])):
                raise ValueError(f"dense words {words}")
            layers.append(("dense", {"units": words[0], "relu": bool(words[1])}))
        elif kind == 3:
            if not (words[0] >= 1 and words[1] >= 1 and words[2] in (0, 1) and
                    words[3] in (0, 1) and not any(words[4:])):
                raise ValueError(f"conv2d words {words}")
            layers.append(("conv2d", {"filters": words[0], "kernel": words[1],
                                      "same": bool(words[2]), "relu": bool(words[3])}))
        elif kind in (4, 7):
            if not (words[0] >= 1 and not any(words[1:])):
                raise ValueError(f"{KINDS[kind]} words {words}")
            layers.append((KINDS[kind], {"pool": words[0]}))
        elif kind == 6:
            (rate,) = struct.unpack("<f", struct.pack("<I", words[0]))
            if not (0 <= rate < 1 and not any(words[1:])):
                raise ValueError(f"dropout words {words}")
            layers.append(("dropout", {"rate": rate}))
        else:
            if any(words):
                raise ValueError(f"{KINDS[kind]} takes no hyper-parameters")
            layers.append((KINDS[kind], {}))
    if layers[-1][0] != "softmax" or any(k == "softmax" for k, _ in layers[:-1]):
        raise ValueError("softmax must be the head, and last")
    if layers[-2][0] != "dense" or layers[-2][1]["units"] != classes:
        raise ValueError("classes do not match the last dense layer")
    return (h, w, c), classes, layers


def _sizes_as_architecture(r):
    """Version 1's u32 L and L + 1 sizes: dense layers, ReLU between them."""
    n = r.take("I")
    sizes = [r.take("I") for _ in range(n + 1)]
    layers = [("dense", {"units": s, "relu": i < n - 1}) for i, s in enumerate(sizes[1:])]
    return (1, 1, sizes[0]), sizes[-1], layers + [("softmax", {})]


def output_shape(shape, kind, hp):
    """A layer's output shape (height, width, channels) from its input's."""
    h, w, c = shape
    if kind == "dense":
        return (1, 1, hp["units"])
    if kind == "conv2d":
        k = hp["kernel"]
        return (h, w, hp["filters"]) if hp["same"] else (h - k + 1, w - k + 1, hp["filters"])
    if kind in ("maxpool2d", "avgpool2d"):
        return (h // hp["pool"], w // hp["pool"], c)
    if kind == "global_avgpool2d":
        return (1, 1, c)
    if kind == "flatten":
        return (1, 1, h * w * c)
    return shape


def tensor_shapes(input_shape, layers):
    """Each parameter tensor's shape, in file order."""
    shape = input_shape
    shapes = []
    for kind, hp in layers:
        if kind == "dense":
            shapes += [(shape[0] * shape[1] * shape[2], hp["units"]), (hp["units"],)]
        elif kind == "conv2d":
            k = hp["kernel"]
            shapes += [(k, k, shape[2], hp["filters"]), (hp["filters"],)]
        elif kind == "batchnorm":
            shapes += [(shape[2],)] * 4  # gamma, beta, moving mean, moving variance
        shape = output_shape(shape, kind, hp)
    return shapes


def trainable(layers):
    """Each tensor's trainable flag, in file order."""
    out = []
    for kind, _ in layers:
        out += {"dense": [1, 1], "conv2d": [1, 1], "batchnorm": [1, 1, 0, 0]}.get(kind, [])
    return out


def _words(kind, hp):
    if kind == "dense":
        return [hp["units"], int(hp["relu"])]
    if kind == "conv2d":
        return [hp["filters"], hp["kernel"], int(hp["same"]), int(hp["relu"])]
    if kind in ("maxpool2d", "avgpool2d"):
        return [hp["pool"]]
    if kind == "dropout":
        return [struct.unpack("<I", struct.pack("<f", hp["rate"]))[0]]
    return []


def write_ckpt(path, input_shape, classes, layers, tensors):
    """model.ckpt version 3 of layers ([(kind, hp)], the head included) and
    their tensors (flat lists of floats, in file order)."""
    number = {name: k for k, name in KINDS.items()}
    body = bytearray(b"TRNRCKPT" + struct.pack("<III", 3, ORDER_TAG, 4))
    body += struct.pack("<5I", *input_shape, classes, len(layers))
    for kind, hp in layers:
        words = _words(kind, hp)
        body += struct.pack("<I", number[kind]) + struct.pack(f"<{HYPER_WORDS}I",
                                                              *(words + [0] * (HYPER_WORDS -
                                                                               len(words))))
    shapes, flags = tensor_shapes(input_shape, layers), trainable(layers)
    at = 0
    for kind, hp in layers:
        count = {"dense": 2, "conv2d": 2, "batchnorm": 4}.get(kind, 0)
        body += struct.pack("<I", count)
        for t in range(at, at + count):
            body += struct.pack("<QI", math.prod(shapes[t]), flags[t])
        at += count
    body += struct.pack("<Q", sum(math.prod(t) for t in shapes))
    for shape, values in zip(shapes, tensors):
        if len(values) != math.prod(shape):
            raise ValueError("tensor size")
        body += struct.pack(f"<{len(values)}f", *values)
    body += struct.pack("<I", zlib.crc32(bytes(body)))
    with open(path, "wb") as f:
        f.write(bytes(body))


def _tensor_table(r, layers, shapes):
    """The newer versions' table: per layer u32 T, per tensor u64 floats and
    u32 flags (1 trainable).  It must match the shapes the layers give."""
    counts = []
    for _ in layers:
        for _ in range(r.take("I")):
            count, flags = r.take("QI")
            if flags not in (0, 1):
                raise ValueError(f"tensor flags {flags}")
            counts.append(count)
    if counts != [math.prod(t) for t in shapes]:
        raise ValueError(f"tensor table {counts}")


def _classes(r, data, classes):
    """The newer versions' classes: u32 how pictures fit (0 digits, 1
    resized), u32 n and n bytes of names, one a line (none when n is 0)."""
    fit, n = r.take("II")
    if fit not in (0, 1):
        raise ValueError(f"picture fit {fit}")
    names = data[r.at:r.at + n].decode("utf-8").split("\n") if n else []
    r.at += n
    if names and len(names) != classes:
        raise ValueError(f"{len(names)} class names for {classes} classes")
    return fit, names


def _tensors(r, shapes):
    out = []
    for shape in shapes:
        n = 1
        for d in shape:
            n *= d
        out.append((shape, list(r.take(f"{n}f")) if n > 1 else [r.take("f")]))
    return out


def read_ckpt(path):
    with open(path, "rb") as f:
        data = f.read()
    r, version = _head(data, b"TRNRCKPT")
    if version == 1:
        input_shape, classes, layers = _sizes_as_architecture(r)
    elif version in (2, 3, 4):
        input_shape, classes, layers = _architecture(r)
    else:
        raise ValueError(f"version {version}")
    shapes = tensor_shapes(input_shape, layers)
    if version >= 3:
        _tensor_table(r, layers, shapes)
    fit, names = _classes(r, data, classes) if version >= 4 else (0, [])
    count = r.take("Q")
    if count != sum(math.prod(t) for t in shapes):
        raise ValueError("parameter count")
    tensors = _tensors(r, shapes)
    if r.at != len(data) - 4:
        raise ValueError("length")
    return {"version": version, "input": input_shape, "classes": classes, "layers": layers,
            "tensors": tensors, "fit": fit, "class_names": names}


def read_state(path):
    with open(path, "rb") as f:
        data = f.read()
    r, version = _head(data, b"TRNRSTAT")
    if version in (1, 2):
        input_shape, classes, layers = _sizes_as_architecture(r)
    elif version in (3, 4, 5, 6):
        input_shape, classes, layers = _architecture(r)
        if version >= 4:
            _tensor_table(r, layers, tensor_shapes(input_shape, layers))
    else:
        raise ValueError(f"version {version}")
    fit, names = _classes(r, data, classes) if version >= 6 else (0, [])
    s = {"version": version, "input": input_shape, "classes": classes, "layers": layers,
         "fit": fit, "class_names": names}
    s["seed"], s["batch_size"], s["shards"], s["epochs"] = r.take("QIII")
    s["lr"], s["validation_split"] = r.take("dd")
    s["n_train"], s["n_val"] = r.take("II")
    n = r.take("I")
    s["data_dir"] = data[r.at:r.at + n].decode()
    r.at += n
    if version >= 2:
        s["rows"], s["cols"], s["fingerprint"] = r.take("III")
    if version >= 6:
        n = r.take("I")
        s["test_dir"] = data[r.at:r.at + n].decode()
        r.at += n
        s["image_rows"], s["image_cols"], s["image_channels"] = r.take("III")
    s["epoch"], s["batches_done"] = r.take("IQ")
    s["loss_sum"] = r.take("d")
    s["correct"], s["seen"], s["adam_step"] = r.take("QQQ")
    rows = r.take("I")
    s["history"] = [r.take("Idddddd" if version >= 3 else "Iddddd") for _ in range(rows)]
    best_weights = False
    if version >= 3:
        cb = {}
        cb["flags"], cb["monitor"], cb["patience"] = r.take("III")
        cb["min_delta"], cb["factor"] = r.take("dd")
        cb["lr_patience"] = r.take("I")
        cb["lr_min_delta"] = r.take("d")
        cb["cooldown"] = r.take("I")
        cb["min_lr"], cb["best"] = r.take("dd")
        cb["best_epoch"], cb["wait"], cb["stopped_epoch"] = r.take("III")
        cb["saved_best"] = r.take("d")
        cb["saved_epoch"] = r.take("I")
        cb["lr_best"] = r.take("d")
        cb["lr_wait"], cb["cooldown_left"] = r.take("II")
        cb["lr"] = r.take("f")
        s["callbacks"] = cb
        best_weights = (cb["flags"] & 3) == 3 and cb["best_epoch"] > 0
    s["optimizer"] = {"kind": 0, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7,
                      "momentum": 0.0, "nesterov": 0, "rho": 0.9, "weight_decay": 0.0,
                      "schedule": 0, "warmup_epochs": 0.0, "decay_rate": 1.0,
                      "label_smoothing": 0.0}
    if version >= 5:
        o = s["optimizer"]
        o["kind"], o["beta1"], o["beta2"], o["epsilon"], o["momentum"] = r.take("Iffff")
        o["nesterov"], o["rho"], o["weight_decay"], o["schedule"] = r.take("IffI")
        o["warmup_epochs"], o["decay_rate"], o["label_smoothing"] = r.take("ddf")
    shapes = tensor_shapes(input_shape, layers)
    count = r.take("Q")
    s["params"] = _tensors(r, shapes)
    s["m"] = _tensors(r, shapes)
    s["v"] = _tensors(r, shapes)
    if best_weights:
        s["best_weights"] = _tensors(r, shapes)
    if r.at != len(data) - 4 or count != sum(len(t[1]) for t in s["params"]):
        raise ValueError("length or parameter count")
    return s
