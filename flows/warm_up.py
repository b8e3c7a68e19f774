"""Work a run needs later, done while it waits for Prefect's temporary server to start.

A cold `werk run` spends ~10-15 s with its main thread waiting for the embedded Prefect API (a
server process creating its database). Meanwhile one background thread imports MLflow and opens
its store (creating its tables on a first run), then imports the modules the driver's later
stages need (Lightning and Ray Train for pretraining: 5-10 s). Each would otherwise be paid in
sequence. Python's import lock keeps concurrent imports of the same module safe; `configure()`
waits for the store to be ready. A failure here only loses the head start: the same work is done
again where it is needed, and reports its error there.
"""

from __future__ import annotations

import importlib
import logging
import threading

# The driver's own later imports, in the order the pipeline needs them.
PIPELINE_MODULES = ("ray", "tasks.training.launch", "lightning", "ray.train.torch", "tasks.evaluate.stage")


def start(modules: tuple[str, ...] = ()) -> threading.Thread:
    def work() -> None:
        try:
            _prefect_models_first()
            from tasks.tracking.setup import warm_up

            warm_up()
            for name in modules:
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - see the module docstring
            logging.getLogger(__name__).debug("warm-up failed", exc_info=True)

    thread = threading.Thread(target=work, name="werk-warm-up", daemon=True)
    thread.start()
    return thread


def _prefect_models_first() -> None:
    """Importing MLflow's store configures every SQLAlchemy mapper in the process. To start its
    temporary server, Prefect's client imports the server's models in the main thread meanwhile;
    configured half-way through that import they fail for the rest of the process ("expression
    'FlowRun' failed to locate a name"), and the run with them. With the models imported here
    first (or, if the main thread is importing them, once it has: the import lock waits), MLflow
    finds them whole. A Prefect server elsewhere (PREFECT_API_URL) needs neither."""
    from prefect.settings import get_current_settings

    if get_current_settings().api.url is None:
        import prefect.server.database.orm_models  # noqa: F401
