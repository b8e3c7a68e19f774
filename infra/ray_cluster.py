"""Connect the pipeline to Ray: an existing cluster when RAY_ADDRESS is set, else a local one.

The local Ray is started for the run and shut down after it, bound to this machine only. A real
cluster (`ray start --head` on a Slurm allocation, KubeRay on Kubernetes) already exists when the
pipeline starts; the same code attaches to it through RAY_ADDRESS.

A flow that runs several stages opens `shared_ray` around them: the first stage that needs Ray
connects (or starts the local one, ~10 s), later stages reuse it, and it is let go when the flow
ends. Stages reused from an earlier run start no Ray at all.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from infra.environment import prepare_ray
from infra.services import free_port


class _Shared:
    """The open `shared_ray`, if any: the CPUs its stages need and whether Ray was started in it."""

    min_cpus: float | None = None
    started = False


@contextmanager
def shared_ray(min_cpus: float = 1) -> Iterator[None]:
    """Within this block, `ray_session` starts Ray at most once (with at least `min_cpus`, the
    most any stage of the block asks for) and keeps it until the block ends."""
    if _Shared.min_cpus is not None:  # nested: the outer block holds Ray
        yield
        return
    _Shared.min_cpus, _Shared.started = min_cpus, False
    try:
        yield
    finally:
        started, _Shared.min_cpus, _Shared.started = _Shared.started, None, False
        if started:
            import ray

            ray.shutdown()


@contextmanager
def ray_session(min_cpus: float = 1) -> Iterator[None]:
    # Loopback only and a temporary folder short enough for Ray's sockets, read when Ray starts;
    # a no-op where the CLI or a flow run has prepared the environment already.
    for note in prepare_ray().notes:
        logging.getLogger(__name__).warning(note)
    import ray

    if ray.is_initialized():
        yield
        return
    if _Shared.min_cpus is not None:
        min_cpus = max(min_cpus, _Shared.min_cpus)
    # Ray reads its token once per process and keeps it; a process that starts a second Ray for
    # another WERK_HOME (a notebook, a test session) must read the file the environment names now.
    try:  # Ray's own API, not a public one: a release without it must not stop every run
        from ray._raylet import AuthenticationTokenLoader

        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):
        logging.getLogger(__name__).debug("Ray has no token cache to reset")
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # Enough logical CPUs for the requested workers even on a 2-core machine; Ray only uses
        # the number for scheduling.
        num_cpus = max(os.cpu_count() or 1, int(min_cpus + 0.999))
        # The dashboard serves Ray's state API, which Ray Train uses to watch its controller;
        # it listens on loopback only.
        # address="local": a new Ray for this run, even where another Ray on the machine left its
        # address in Ray's temporary folder (ray.init would otherwise join that one).
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=True, dashboard_host="127.0.0.1",
                 dashboard_port=free_port(), log_to_driver=True, _node_ip_address="127.0.0.1")
    if _Shared.min_cpus is not None:  # the enclosing shared_ray lets it go
        _Shared.started = True
        yield
        return
    try:
        yield
    finally:
        ray.shutdown()


OnProgress = Callable[[str, int, int, Any], None]  # (function name, tasks done, tasks in all, the task's result)

_TASK_CPU = [0.0]  # CPU-seconds of every task ray_map ran in this process (what a stage's meter reads)


def task_cpu_seconds() -> float:
    return _TASK_CPU[0]


def _timed(fn: Callable) -> Callable:
    """`fn`, returning its result with the CPU time it took in the worker."""
    def run(*args: Any) -> tuple[Any, float]:
        start = time.process_time()
        result = fn(*args)
        return result, time.process_time() - start

    run.__name__ = run.__qualname__ = getattr(fn, "__name__", "task")
    return run


def ray_map(fn: Callable, args: list[tuple], max_in_flight: int | None = None,
            on_progress: OnProgress | None = None) -> list:
    """`[fn(*a) for a in args]` as Ray tasks (one CPU each), results in input order.

    At most `max_in_flight` tasks run at once (default: the cluster's CPUs), which bounds memory
    on the driver and the object store however many tasks there are. `on_progress` is called on
    the driver after each task finishes.
    """
    import ray

    remote = ray.remote(num_cpus=1, max_retries=2)(_timed(fn))
    limit = max_in_flight or max(1, int(ray.cluster_resources().get("CPU", 1)))
    results: list = [None] * len(args)
    pending: dict = {}
    finished = 0
    queue = iter(enumerate(args))
    for i, a in queue:
        pending[remote.remote(*a)] = i
        if len(pending) >= limit:
            break
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            i = pending.pop(ref)
            results[i], cpu = ray.get(ref)
            _TASK_CPU[0] += cpu
            finished += 1
            if on_progress is not None:
                on_progress(fn.__name__, finished, len(args), results[i])
            nxt = next(queue, None)
            if nxt is not None:
                pending[remote.remote(*nxt[1])] = nxt[0]
    return results


def mapper(max_in_flight: int | None = None, on_progress: OnProgress | None = None) -> Callable[[Callable, list[tuple]], list]:
    return lambda fn, args: ray_map(fn, args, max_in_flight, on_progress)
