"""The CLI's warm-up thread and Prefect's temporary server starting at once do not break MLflow.

Importing MLflow's store configures every SQLAlchemy mapper in the process; Prefect's client
imports its server's models meanwhile to start the temporary server. When the configuration ran
half-way through that import, the run failed ("expression 'FlowRun' failed to locate a name"),
about one start in three here. Each check is a fresh interpreter, as a user's `werk run` is.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, tempfile
    os.environ["WERK_HOME"] = tempfile.mkdtemp()
    os.environ.pop("PREFECT_API_URL", None)
    from infra.environment import prepare
    prepare()
    from flows import warm_up
    thread = warm_up.start(())
    import prefect.server.api.server  # what Prefect's client imports to start its temporary server
    thread.join()
    import sqlalchemy.orm
    sqlalchemy.orm.configure_mappers()
    from mlflow import MlflowClient
    from tasks.tracking.setup import configure
    configure()
    MlflowClient().search_experiments(max_results=1)
    print("mappers and MLflow store fine")
""")


def test_warm_up_and_the_prefect_server_import_do_not_race(tmp_path):
    for _ in range(3):  # the race struck one start in three
        done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "fine" in done.stdout, done.stderr[-3000:]
