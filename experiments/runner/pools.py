"""The data pools points draw from: a point names its pool by source ("data": "embedded" or an MNIST
folder), and every process that evaluates it loads that pool once (or is given it by the driver)."""

_POOLS: dict = {}


def source(mnist: str | None) -> str:
    """What a point records as its data: "embedded" or the MNIST folder (from --mnist or
    $SGD_SDE_MNIST), so that a worker can load the same pool by itself."""
    import models

    return models.load_mnist(mnist).source


def load(source: str):
    """The MNIST pool a point names (loaded once per process, or provided by the driver)."""
    import models

    if source not in _POOLS:
        _POOLS[source] = (
            models.embedded_mnist() if source == "embedded" else models.load_mnist(source)
        )
    return _POOLS[source]


def provide(source: str, value) -> None:
    """Install a pool shipped by the driver (a Ray worker on a machine without the user's
    folder)."""
    _POOLS[source] = value
