"""Connect the pipeline to Ray: an existing cluster when RAY_ADDRESS is set, else a local one.

The local Ray is started for the run and shut down after it, bound to this machine only. A real
cluster (`ray start --head` on a Slurm allocation, KubeRay on Kubernetes) already exists when the
pipeline starts; the same code attaches to it through RAY_ADDRESS.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from infra.services import free_port


@contextmanager
def ray_session(min_cpus: float = 1) -> Iterator[None]:
    import ray

    if ray.is_initialized():
        yield
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # Enough logical CPUs for the requested workers even on a 2-core machine; Ray only uses
        # the number for scheduling.
        num_cpus = max(os.cpu_count() or 1, int(min_cpus + 0.999))
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # The dashboard serves Ray's state API, which Ray Train uses to watch its controller;
        # it listens on loopback only.
        ray.init(num_cpus=num_cpus, include_dashboard=True, dashboard_host="127.0.0.1",
                 dashboard_port=free_port(), log_to_driver=True, _node_ip_address="127.0.0.1")
    try:
        yield
    finally:
        ray.shutdown()
