"""The project's one-line errors: each names the value or the cause, and the fix."""


class ConfigError(ValueError):
    """Invalid input or settings, raised before expensive work starts."""


class RunFailed(RuntimeError):
    """A run that started and could not finish (a service lost mid-run): what failed and
    what to do; re-running resumes, since finished steps are cached."""
