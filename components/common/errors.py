"""The project's one-line errors: each names the value or the cause, and the fix."""


class ConfigError(ValueError):
    """Invalid input or settings, raised before expensive work starts."""


class RunFailed(RuntimeError):
    """A run that started and could not finish (a service lost mid-run): what failed and
    what to do; re-running resumes, since finished steps are cached."""


# What a user's input causes (bad settings, a missing input, an output that exists or
# cannot be written): said in one line, exit code 2.
BAD_INPUT = (ConfigError, FileNotFoundError, FileExistsError, PermissionError)
