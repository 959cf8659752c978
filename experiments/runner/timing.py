"""Wall time and the part of it JAX spends compiling."""

import contextlib
import math

_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


@contextlib.contextmanager
def timed():
    """Yields elapsed() -> (wall seconds, seconds compiling) since entry. Compiling: the union of
    JAX's tracing, lowering and XLA-compile spans (reads from the persistent cache happen inside
    the last; nested traces are counted once)."""
    import time

    from jax import monitoring

    spans = []

    def listen(event, start, end, **kwargs):
        if event in _COMPILE_EVENTS:
            spans.append((start, end))

    monitoring.register_event_time_span_listener(listen)
    start = time.time()

    def elapsed():
        busy, reach = 0.0, -math.inf
        for a, b in sorted(spans):
            if b > reach:
                busy += b - max(a, reach)
                reach = b
        return time.time() - start, busy

    try:
        yield elapsed
    finally:
        monitoring.unregister_event_time_span_listener(listen)
