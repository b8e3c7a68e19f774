"""Why a pretraining run ended without finishing; importable without Ray or Lightning."""


class TrainingStopped(RuntimeError):
    """Training stopped early on request (SIGTERM/SIGUSR1) after writing a checkpoint; running the
    same job again resumes from it."""


class BudgetSpent(RuntimeError):
    """Training used its `compute.budget_device_hours` and stopped after writing a checkpoint; with
    a larger budget the same job resumes from it."""
