"""Checks that an object answers a Protocol with the Protocol's own signatures
(``isinstance`` on a runtime-checkable Protocol checks the names only)."""

import inspect


def _shape(function, skip: int = 0) -> list[str]:
    """Each parameter: its name where it has a default (callers pass those by name),
    else its position only."""
    parameters = list(inspect.signature(function).parameters.values())[skip:]
    return [p.name if p.default is not p.empty else "positional" for p in parameters]


def assert_implements(obj, protocol) -> None:
    assert isinstance(obj, protocol), f"{type(obj).__name__} is no {protocol.__name__}"
    for name, member in vars(protocol).items():
        if name.startswith("_") or not callable(member):
            continue
        found, wanted = _shape(getattr(obj, name)), _shape(member, skip=1)
        assert found == wanted, f"{type(obj).__name__}.{name}{found}: {protocol.__name__} " \
                                f"says {wanted}"
