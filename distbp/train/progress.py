"""A progress bar for rank 0: step, loss, samples/s and ETA on one line that redraws in a terminal,
and a plain line every ~10% when stderr is not a terminal (logs, CI)."""
import sys
import time


class Progress:
    def __init__(self, total, desc="train", stream=None, enabled=True):
        self.total, self.desc = total, desc
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self._last_pct = -1

    def update(self, step, **fields):
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        frac = step / max(self.total, 1)
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        info = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in fields.items())
        line = f"{self.desc} [{bar}] {step}/{self.total} {info} eta {_fmt(eta)}"
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(100))
        else:
            pct = int(frac * 10)
            if pct == self._last_pct and step != self.total:
                return
            self._last_pct = pct
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _fmt(seconds):
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"
