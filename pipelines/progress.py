"""Progress on a terminal, the way `uv` and `pip` show it: a live line while a step runs (the bytes
downloaded and their rate, then the step and its time), and one line per finished step.

It is a dlt progress collector (`dlt.pipeline(progress=...)`): dlt reports its own steps (extract,
normalize, load) to it, the source counts the response's bytes in it, and the runner wraps its own
steps in it. The command line uses it only when stderr is a terminal and the log format is text:
under cron, or with `--log-format json`, nothing of it is printed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from dlt.common.runtime.collector import Collector

from pipelines.trigg import DOWNLOADED

DLT_STEPS = ("Extract", "Normalize", "Load")
"""dlt's own steps, named `Extract trigg`, `Normalize trigg in <load id>`, ...: shown by verb."""
REDRAW_SECONDS = 0.1
DOWNLOADING_SECONDS = 0.5
"""The live line says "downloading" while the last chunk is at most this old."""
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
LABEL_WIDTH = 28


class TerminalProgress(Collector):
    """Draws on `stream`, a terminal. Lines written through `writer()` (the log's warnings)
    appear above the live line, never through it."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self.step: str | None = None
        self._label = ""
        self._started = 0.0
        self._downloaded = 0
        self._last_chunk: float | None = None
        self._download_shown = True
        self._live = False
        self._last_shown = ""
        self._frame = 0
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- dlt's collector interface --------------------------------------------------------

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        with self._lock:
            if name == DOWNLOADED:
                self._downloaded += inc
                self._last_chunk = self.clock()
                self._download_shown = False
            elif not self._download_shown:
                self._show_download()  # the body is in; the step goes on with it

    def _start(self, step: str) -> None:
        with self._lock:
            verb = step.split(" ", 1)[0]
            self._label = verb.lower() if verb in DLT_STEPS else step
            self._started = self.clock()
            self._downloaded, self._last_chunk, self._download_shown = 0, None, True
        self._stopped.clear()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _stop(self) -> None:
        self._stopped.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if not self._download_shown:
                self._show_download()
            if self._label == self._last_shown:  # dlt's second, tiny extract of its own state
                self._clear()
                return
            self._print(f"  {self._label:<{LABEL_WIDTH}}{self.clock() - self._started:>7.1f} s")
            self._last_shown = self._label

    def __deepcopy__(self, memo: dict[int, Any]) -> TerminalProgress:
        return self  # dlt copies a pipeline's collector along with it: there is one terminal

    # -- the terminal -----------------------------------------------------------------------

    def writer(self) -> TextIO:
        """A stream for other lines on the same terminal: the live line makes way for them."""
        return _Above(self)

    def close(self) -> None:
        """Clear the live line (at the end of the command, whatever happened)."""
        with self._lock:
            self._clear()
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stopped.wait(REDRAW_SECONDS):
            with self._lock:
                self._draw()

    def _draw(self) -> None:
        now = self.clock()
        self._frame = (self._frame + 1) % len(SPINNER)
        line = f"{SPINNER[self._frame]} {self._label} {now - self._started:.1f} s"
        recent = self._last_chunk is not None and now - self._last_chunk < DOWNLOADING_SECONDS
        if recent and not self._download_shown:
            seconds = max((self._last_chunk or now) - self._started, 1e-6)
            line += f"  downloading {size(self._downloaded)} ({size(self._downloaded / seconds)}/s)"
        self._clear()
        self.stream.write(line[: _width(self.stream) - 1])
        self.stream.flush()
        self._live = True

    def _show_download(self) -> None:
        seconds = max((self._last_chunk or self.clock()) - self._started, 1e-6)
        rate = size(self._downloaded / seconds)
        self._print(
            f"  {'download':<{LABEL_WIDTH}}{seconds:>7.1f} s  {size(self._downloaded)} ({rate}/s)"
        )
        self._download_shown = True

    def _print(self, line: str) -> None:
        self._clear()
        self.stream.write(line + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self._live:
            self.stream.write("\r\x1b[2K")
            self._live = False


class _Above:
    """A text stream that writes above the live line of a `TerminalProgress`."""

    def __init__(self, progress: TerminalProgress) -> None:
        self.progress = progress

    def write(self, text: str) -> int:
        with self.progress._lock:
            self.progress._clear()
            return self.progress.stream.write(text)

    def flush(self) -> None:
        self.progress.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.progress.stream, name)


def size(count: float) -> str:
    """Bytes the way `uv` writes them: 812 B, 12.4 KiB, 3.1 MiB, 1.2 GiB."""
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def _width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80
