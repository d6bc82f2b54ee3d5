"""Per-session background jobs: one worker thread at a time, cancellable, UI-safe updates."""
from __future__ import annotations

import logging
import threading
import traceback

log = logging.getLogger(__name__)


def in_server() -> bool:
    try:
        import panel as pn
        return pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    except Exception:
        return False


class JobRunner:
    """Run ``fn(cancel_event)`` in a thread; ``ui(callback)`` schedules UI updates safely."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self.cancel_event = threading.Event()
        self._doc = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ui(self, callback) -> None:
        if self._doc is not None:
            import panel as pn
            pn.state.execute(callback) if pn.state.curdoc is self._doc else self._doc.add_next_tick_callback(callback)
        else:
            callback()

    def start(self, fn, *, on_error, on_done=None, wait: bool = False) -> bool:
        if self.busy:
            return False
        self.cancel_event = threading.Event()
        try:
            import panel as pn
            self._doc = pn.state.curdoc if in_server() else None
        except Exception:
            self._doc = None

        def target():
            try:
                fn(self.cancel_event)
            except Exception as exc:  # shown to the user, logged with traceback
                log.error("job failed: %s\n%s", exc, traceback.format_exc())
                self.ui(lambda err=exc: on_error(err))  # bound now: `exc` is unset after the block
            finally:
                if on_done:
                    self.ui(on_done)
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()
        return True

    def cancel(self) -> None:
        self.cancel_event.set()

    def join(self, timeout=None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
