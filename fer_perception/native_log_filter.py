"""Keeps MediaPipe's and TensorFlow Lite's C++ start-up chatter off the terminal, everything else on it.

MediaPipe's graphs log from their own C++ threads straight to file descriptor 2
(a dozen "Feedback manager requires a model with a single signature" lines per
face mesh, TensorFlow Lite's "Created ... XNNPACK delegate", absl's
"messages before InitializeLog" notice), and no log level set from Python
reaches them. :func:`filter_native_logs` puts a pipe in front of descriptor 2
and a thread that passes every line to the real stderr except those of
:data:`NOISE`; ``FER_VERBOSE=1`` (or the executables' ``--verbose``) leaves
stderr untouched. At exit the pipe is drained, so a last error line is never
lost.
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading

VERBOSE_ENV = "FER_VERBOSE"
NOISE = re.compile(rb"^(?:[WI]\d{4} [\d:.]+ +\d+ [\w.]+\.cc:\d+\] "   # absl/glog lines of the C++ libraries
                   rb"|INFO: Created TensorFlow Lite"
                   rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")
"""Lines of the native libraries' start-up logs. Their errors (E..., F...) are not matched and still show."""

_installed: list["_StderrFilter"] = []


class _StderrFilter:
    """A pipe on descriptor 2 and the thread that forwards its lines, noise removed."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self._terminal = os.dup(2)
        read_end, self._write_end = os.pipe()
        os.dup2(self._write_end, 2)
        self._reader = os.fdopen(read_end, "rb", buffering=0)
        self.dropped = 0
        self._thread = threading.Thread(target=self._forward, name="native_log_filter", daemon=True)
        self._thread.start()

    def _forward(self) -> None:
        pending = b""
        while chunk := self._reader.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._emit(line + b"\n")
        if pending:
            self._emit(pending)

    def _emit(self, line: bytes) -> None:
        if NOISE.match(line):
            self.dropped += 1
        else:
            os.write(self._terminal, line)

    def close(self) -> None:
        """Give descriptor 2 back to the terminal and forward what is still in the pipe."""
        sys.stderr.flush()
        os.dup2(self._terminal, 2)
        os.close(self._write_end)
        self._thread.join(timeout=2.0)


def filter_native_logs(verbose: bool = False) -> None:
    """Filter the native libraries' start-up noise out of stderr for the rest of the process, unless ``verbose``
    or ``FER_VERBOSE=1``. Call it first thing in an executable, before MediaPipe loads; calling it again is a no-op."""
    if verbose or os.environ.get(VERBOSE_ENV, "") not in ("", "0") or _installed:
        return
    _installed.append(_StderrFilter())
    atexit.register(_installed[0].close)
