"""Run an asyncio server of the stack on a background thread with its own event loop.

The stand-ins (kubeapi, controller) implement start_async() and stop_async();
this gives them start(), stop() and use as a context manager from plain threads,
and their CLIs until_signalled().
"""
from __future__ import annotations

import asyncio
import signal
import threading


async def until_signalled() -> None:
    """Return once SIGTERM or SIGINT arrives (the CLIs stop cleanly on either)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class LoopThreadMixin:
    """``start()`` runs the class's ``start_async()`` on a new thread's loop and returns once it is listening;
    ``stop()`` runs its ``stop_async()`` there and joins the thread."""

    thread_name = 'stand-in'
    stop_timeout = 30.0

    def _init_loop_thread(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self):
        """Run on a background thread; returns once the port is listening."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f'{self.thread_name} failed to start: {self._error}') from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.start_async())
        except Exception as exc:  # reported to the starting thread, which raises it
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.stop_async())
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.stop_timeout)
        self._thread = None
        self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
