"""A one-line progress bar on stderr: suite i/n, repeat, case, elapsed.

On a TTY the line is redrawn in place ('\\r', clipped to the terminal width, at most ~10 redraws a second);
elsewhere (CI logs, pipes, tests) every update is one plain line, without the bar.
"""
from __future__ import annotations

import shutil
import sys
import time


class Progress:
    def __init__(self, total_suites: int, stream=None, tty: bool | None = None, width: int = 20):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(tty if tty is not None else getattr(self.stream, "isatty", lambda: False)())
        self.total = max(1, int(total_suites))
        self.width = width
        self.t0 = time.perf_counter()
        self.index, self.suite, self.repeat, self.repeats, self.case = 0, "", 1, 1, ""
        self._last_draw = 0.0
        self._last_plain = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def start_suite(self, index: int, name: str, repeat: int = 1, repeats: int = 1) -> None:
        """index: 1-based suite number."""
        self.index, self.suite, self.repeat, self.repeats, self.case = index, name, repeat, repeats, ""
        self._draw(force=True)

    def set_repeat(self, repeat: int, repeats: int) -> None:
        """The running suite moved on to repeat `repeat` of `repeats` (a child running them back to back)."""
        if (repeat, repeats) != (self.repeat, self.repeats):
            self.repeat, self.repeats, self.case = repeat, repeats, ""
            self._draw(force=True)

    def set_case(self, case: str) -> None:
        case = " ".join(str(case).split())
        if case and case != self.case:
            self.case = case
            self._draw()

    def line(self) -> str:
        done = (self.index - 1 + (self.repeat - 1) / max(1, self.repeats)) / self.total
        fill = int(round(done * self.width))
        bar = "#" * fill + "-" * (self.width - fill)
        rep = f" r{self.repeat}/{self.repeats}" if self.repeats > 1 else ""
        return f"[{bar}] suite {self.index}/{self.total} {self.suite}{rep} | {self.case} | {self.elapsed():.1f}s"

    def plain(self) -> str:
        rep = f" repeat {self.repeat}/{self.repeats}" if self.repeats > 1 else ""
        case = f": {self.case}" if self.case else ""
        return f"[bench {self.elapsed():7.1f}s] suite {self.index}/{self.total} {self.suite}{rep}{case}"

    def _draw(self, force: bool = False) -> None:
        if self.tty:
            now = time.perf_counter()
            if not force and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            cols = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + self.line()[:cols - 1].ljust(cols - 1))
        else:
            key = (self.index, self.repeat, self.case)
            if key == self._last_plain:
                return
            self._last_plain = key
            self.stream.write(self.plain() + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (a suite finished, a warning), without losing the bar."""
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + " " * (cols - 1) + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()
        if self.tty and self.suite:
            self._draw(force=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
