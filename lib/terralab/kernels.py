"""The Jupyter kernels that runs execute on: checked before a run, started with the run's environment,
stopped at once when the run is interrupted.

A run's kernel gets its environment and working directory from the kernel manager (not from this
process's ``os.environ`` and current directory), so runs in several threads of one process stay apart.
Ctrl-C or SIGTERM during a run kills that run's kernels and raises :class:`Interrupted`; a closing sweep
worker kills whatever kernels its runs still have (:func:`kill_running_kernels`).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import KernelNotFoundError
from .options import DEFAULT_KERNEL

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

__all__ = [
    "Interrupted",
    "check_kernel",
    "kernel_manager_class",
    "kill_kernels",
    "kill_running_kernels",
    "stop_kernels_on_signals",
]


def check_kernel(kernel: str = DEFAULT_KERNEL) -> None:
    """Raise KernelNotFoundError, saying how to register it, when the Jupyter kernel ``kernel`` is missing.

    >>> check_kernel("no-such-kernel")
    Traceback (most recent call last):
    ...
    terralab.errors.KernelNotFoundError: Jupyter kernel 'no-such-kernel' is not registered (available: ...
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(kernel)
    except NoSuchKernel:
        available = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        how = (
            "Run `make setup`, or register it with "
            '`python -m ipykernel install --sys-prefix --name terralab --display-name "Python (terralab)"` '
            "from the environment terralab is installed in"
            if kernel == DEFAULT_KERNEL
            else f"Register it (`python -m ipykernel install --sys-prefix --name {kernel}`) "
            "or pick one of those "
            "with --kernel"
        )
        raise KernelNotFoundError(
            f"Jupyter kernel {kernel!r} is not registered (available: {available}). {how}."
        )


def kernel_manager_class(
    env: dict[str, str], cwd: str, started: list | None = None
) -> type[AsyncKernelManager]:
    """nbclient's kernel manager, starting the kernel with ``env`` added to its environment and in ``cwd``.

    Handing both to the kernel process (instead of changing os.environ and chdir, as papermill's ``cwd``
    does) keeps runs in threads of one process apart. The manager also asks for CurveZMQ encryption where
    zmq and the kernel support it: kernel traffic is then encrypted on shared machines, and ipykernel stops
    warning "running over TCP without encryption" on every run. Every manager that starts a kernel is
    appended to ``started``, so an interrupt can stop that kernel at once.
    """
    import zmq
    from jupyter_client.manager import AsyncKernelManager

    encrypt = zmq.has("curve") and "transport_encryption" in AsyncKernelManager.class_trait_names()

    class _RunKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            if encrypt:
                kwargs.setdefault("transport_encryption", "auto")
            super().__init__(**kwargs)

        async def _async_interrupt_kernel(self):
            # jupyter_client interrupts a kernel before asking it to shut down. After the last cell the kernel
            # may still be finishing that cell's reply, and the interrupt then prints "KeyboardInterrupt
            # caught in kernel." on every few runs. An idle kernel needs no interrupt to shut down; a busy one
            # (a cell that timed out) is killed after shutdown_wait_time.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

        async def start_kernel(self, **kw):
            kw["env"] = {**(kw.get("env") or os.environ), **env}
            kw.setdefault("cwd", cwd)
            if started is not None:
                started.append(self)
            _LIVE_KERNELS.add(self)
            return await super().start_kernel(**kw)

    return _RunKernelManager


# Every kernel manager a run in this process started (weakly held: gone once its run is done).
_LIVE_KERNELS: weakref.WeakSet = weakref.WeakSet()


def kill_running_kernels() -> None:
    """Kill every kernel that runs of this process still have: what a closing sweep worker does."""
    kill_kernels(list(_LIVE_KERNELS))


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM; ``signum`` says which. The CLI exits 130 or 143."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def kill_kernels(managers: list) -> None:
    """SIGKILL the process group of every kernel these managers started (each kernel leads its own).

    A kernel asked to shut down while a cell runs prints a screenful of ZMQ errors; one killed outright
    says nothing, and nbclient's cleanup then only removes its connection file.
    """
    import signal

    for km in managers:
        process = getattr(getattr(km, "provisioner", None), "process", None)
        pid = getattr(process, "pid", None)
        if not pid:
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@contextlib.contextmanager
def stop_kernels_on_signals(managers: list) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM kill this run's kernels and raise :class:`Interrupted`.

    Only in the main thread (where Python delivers signals); runs in other threads, such as sweep tasks on
    a Dask worker, are left to their process's own handling.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        kill_kernels(managers)
        raise Interrupted(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not settable here (an embedded interpreter)
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
