#!/usr/bin/env python3
"""The progress bar in a real pseudo-terminal of 120, 80 and 40 columns (and
one resized from 120 to 40 mid-run): no redraw ever starts over a line that
the terminal has wrapped (what left broken copies behind), every line of the
final screen fits, and each epoch ends with a Keras-like line."""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])

try:
    for fd in pty.openpty():
        os.close(fd)
except OSError as e:
    print(f"SKIP: no pseudo-terminal can be opened here ({e}); the progress bar was not tested")
    sys.exit(77)


def set_size(fd, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))


class Screen:
    """A terminal just good enough for the trainer's output: printable
    characters, \\r, \\n and ESC [ K; it wraps at the last column as a real
    one does and records every \\r issued on a line it has wrapped."""

    def __init__(self, cols):
        self.cols, self.rows, self.row, self.col = cols, [[]], 0, 0
        self.wrapped = False
        self.broken = []

    def resize(self, cols):
        self.cols = cols

    def feed(self, text):
        i = 0
        while i < len(text):
            c = text[i]
            if c == "\x1b":
                m = re.match(r"\x1b\[(\d*)K", text[i:])
                if m:
                    del self.rows[self.row][self.col:]
                    i += len(m.group(0))
                    continue
            if c == "\r":
                if self.wrapped:
                    self.broken.append("".join(self.rows[self.row - 1]))
                self.col = 0
            elif c == "\n":
                self.newline()
                self.wrapped = False
            else:
                if self.col >= self.cols:
                    self.newline()
                    self.wrapped = True
                line = self.rows[self.row]
                if self.col < len(line):
                    line[self.col] = c
                else:
                    line.append(c)
                self.col += 1
            i += 1

    def newline(self):
        self.row += 1
        self.col = 0
        if self.row == len(self.rows):
            self.rows.append([])

    def lines(self):
        return ["".join(r) for r in self.rows]


def run(cols, data, out, resize_to=None):
    master, slave = pty.openpty()
    set_size(slave, cols)
    # The program's bytes as they are: no \n turned into \r\n.
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    p = subprocess.Popen([TRAINER, "--data", data, "--out", out, "--epochs", "3",
                          "--batch-size", "4", "--hidden", "512,512", "--no-plots"],
                         stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    screen = Screen(cols)
    raw = b""
    resized = resize_to is None
    deadline = time.time() + 300
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            raw += chunk
            screen.feed(chunk.decode("utf-8", "replace"))
            if not resized and b"ETA" in raw:
                # Mid-epoch: the terminal gets narrower, as a user drags it.
                set_size(master, resize_to)
                screen.resize(resize_to)
                p.send_signal(signal.SIGWINCH)
                resized = True
        elif p.poll() is not None:
            break
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, screen, raw.decode("utf-8", "replace")


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, n_train=2000, n_test=50)
    for cols, resize_to in ((120, None), (80, None), (40, None), (120, 40)):
        name = f"{cols} columns" + (f", then {resize_to}" if resize_to else "")
        status, screen, raw = run(cols, data, os.path.join(tmp, f"out{cols}-{resize_to}"),
                                  resize_to)
        check(status == 0, f"{name}: status {status}")
        check("ETA: " in raw, f"{name}: no running bar was drawn (the epochs were too short)")
        check(not screen.broken,
              f"{name}: {len(screen.broken)} redraws over a wrapped line: {screen.broken[:2]}")
        final = screen.cols
        lines = screen.lines()
        long_lines = [ln for ln in lines if len(ln) > final - 1 and "/400" in ln]
        check(not long_lines, f"{name}: progress lines wider than {final - 1}: {long_lines}")
        ends = [ln for ln in lines if re.match(r"400/400 \[=+\]( - |$)", ln)]
        times = [m for ln in lines for m in re.finditer(r"\d+s (\d+)(us|ms|s)/step", ln)]
        steps = len(times)
        # Keras' units: a step of 4.3 ms reads 4ms/step, not 4322us/step.
        check(all(int(m.group(1)) < 1000 or m.group(2) == "s" for m in times),
              f"{name}: a step time not in Keras' unit: {[m.group(0) for m in times]}")
        check(len(ends) == 3 and steps == 3,
              f"{name}: {len(ends)} epoch lines, want 3:\n" + "\n".join(lines))
        check(any("val_accuracy: " in ln for ln in lines),
              f"{name}: the validation figures are missing:\n" + "\n".join(lines))
        stale = [ln for ln in lines if "ETA" in ln]
        check(not stale, f"{name}: stale running lines left on the screen: {stale}")

finish("test_progress")
