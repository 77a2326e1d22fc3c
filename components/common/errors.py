"""The one error type for bad user input: it names the value and the fix."""


class ConfigError(ValueError):
    """Invalid input or settings, raised before expensive work starts."""
