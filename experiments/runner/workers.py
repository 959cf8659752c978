"""Where the chunks of a sweep run: in this process, in local worker processes, or as Ray tasks.

Every executor takes a job, `job(points, seeds) -> outputs` (the experiment's evaluate bound to its
run context: `functools.partial(evaluate, run)`), and chunks of (points, seeds); it yields (chunk
index, outputs) as chunks finish, and reports progress inside a chunk as (chunk index, fraction
done). Worker processes and Ray tasks receive the job pickled: a top-level evaluate pickles by
reference (its module is imported there), so any experiment module of the checkout runs anywhere; a
lambda or a nested function runs in-process only. The driver alone writes rows. A chunk's numbers
depend only on its points and seeds (every key is derived from them), so where and in which order
chunks run never changes a number.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import pickle
import queue as queue_module
from collections.abc import Callable, Iterator

Task = tuple[list[dict], list[int]]
Job = Callable[[list[dict], list[int]], list[list[dict]]]


def _evaluate_with_progress(job: Job, index: int, task: Task, report: Callable[[int, float], None]):
    import sim

    points, seeds = task
    with sim.on_progress(lambda done, total: report(index, done / max(total, 1))):
        return job(points, seeds)


class Serial:
    """Chunks one after another in this process."""

    workers = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, job: Job, tasks: list[Task], report) -> Iterator[tuple[int, list]]:
        for index, task in enumerate(tasks):
            yield index, _evaluate_with_progress(job, index, task, report)


# ---- local worker processes -------------------------------------------------------------------

_queue = None


# The driver's JAX settings that change numbers: a worker runs with the same ones (a float64 driver
# with float32 workers would write other rows).
_SETTINGS = ("jax_enable_x64", "jax_numpy_dtype_promotion", "jax_default_matmul_precision")


def jax_settings() -> dict:
    import jax

    values = {name: getattr(jax.config, name) for name in _SETTINGS}
    return {name: getattr(v, "value", v) for name, v in values.items()}  # enums as their strings


def _init_worker(progress_queue, cache_dir, device_queue=None, settings=None, core_queue=None):
    global _queue
    _queue = progress_queue
    if device_queue is not None:  # one GPU per worker, before JAX starts in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = str(device_queue.get())
    if core_queue is not None:  # its own cores: workers' thread pools do not fight over one core
        os.sched_setaffinity(0, core_queue.get())
    import jax

    for name, value in (settings or {}).items():
        jax.config.update(name, value)
    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _report_to_queue(index, fraction):
    _queue.put((index, fraction))


def _work(job: Job, index: int, task: Task):
    return _evaluate_with_progress(job, index, task, _report_to_queue)


def _check_picklable(job: Job) -> None:
    """Refuse, before any worker starts on it, a job a worker cannot receive."""
    try:
        pickle.dumps(job)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise TypeError(
            f"worker processes need a top-level evaluate function (pickled by reference): {err}"
        ) from None


def assignments(workers: int, gpus: int, available: list[int], cores_per_worker: int | None = None):
    """What each local worker is given: (GPU index per worker, or None; core set per worker, or
    None). Several GPUs: worker k sees GPU k % gpus only (CUDA_VISIBLE_DEVICES), its cores unpinned.
    Otherwise cores_per_worker c: worker k gets cores k c ... (k + 1) c - 1; c = 0: no pinning,
    every worker sees every core, as a serial run does (XLA:CPU partitions a reduction over the
    examples by the cores a process sees, so only then are the rows bit-identical to a serial run's
    at large batch sizes); by default, with more than one worker, worker k gets every workers-th
    core from the k-th (so their XLA thread pools never share a core)."""
    if gpus > 1:
        return [k % gpus for k in range(workers)], None
    c = cores_per_worker
    if c == 0:
        return None, None
    if c is not None and len(available) >= c * workers:
        return None, [set(available[k * c : (k + 1) * c]) for k in range(workers)]
    if len(available) >= workers > 1:
        return None, [set(available[k::workers]) for k in range(workers)]
    return None, None


class LocalWorkers:
    """Chunks in `workers` fresh processes (spawned, never forked: JAX's threads do not survive a
    fork); they share the persistent compilation cache, so a shape compiled by one is read by the
    others."""

    def __init__(
        self,
        workers: int,
        cache_dir: str | None = None,
        gpus: int = 0,
        cores_per_worker: int | None = None,
    ):
        self.workers = workers
        self.cache_dir = cache_dir
        self.gpus = gpus  # > 1: worker k sees GPU k % gpus only
        # None: the cores split evenly (pinned when > 1 worker); 0: unpinned
        self.cores_per_worker = cores_per_worker

    def __enter__(self):
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue()
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        plan_devices, plan_cores = assignments(
            self.workers, self.gpus, available, self.cores_per_worker
        )
        devices, cores = None, None
        if plan_devices is not None:
            devices = context.Queue()
            for d in plan_devices:
                devices.put(d)
        if plan_cores is not None:
            cores = context.Queue()
            for c in plan_cores:
                cores.put(c)
        self.pool = cf.ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self.queue, self.cache_dir, devices, jax_settings(), cores),
        )
        return self

    def __exit__(self, *exc):
        self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)
        return False

    def _drain(self, report):
        while True:
            try:
                index, fraction = self.queue.get_nowait()
            except queue_module.Empty:
                return
            report(index, fraction)

    def run(self, job: Job, tasks: list[Task], report) -> Iterator[tuple[int, list]]:
        _check_picklable(job)
        futures = {self.pool.submit(_work, job, i, task): i for i, task in enumerate(tasks)}
        while futures:
            finished, _ = cf.wait(futures, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            self._drain(report)
            for future in finished:
                index = futures.pop(future)
                yield index, future.result()


# ---- Ray --------------------------------------------------------------------------------------


class RayWorkers:
    """Chunks as Ray tasks on a cluster (`address`, e.g. "192.0.2.7:6379" or "auto"), or on a local
    Ray instance when address is None ("local": `num_cpus` CPUs). Data pools the points name are put
    in the object store once and handed to every task. One CPU per task.

    The local instance is started by a fresh (spawned) process in which JAX never starts, and this
    one connects to it: Ray starts its processes with a preexec_fn, i.e. through os.fork and its
    hooks, and forking a process in which JAX has started its threads can deadlock (JAX warns of
    it)."""

    def __init__(
        self, address: str | None, *, num_cpus: int | None = None, cache_dir: str | None = None
    ):
        self.address, self.num_cpus, self.cache_dir = address, num_cpus, cache_dir

    @property
    def workers(self) -> int:
        import ray

        return int(ray.cluster_resources().get("CPU", 1))

    def __enter__(self):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home from a sweep
        import ray

        address, self._head = self.address, None
        if address is None:
            context = multiprocessing.get_context("spawn")
            self._head_pipe, child = context.Pipe()
            self._head = context.Process(
                target=_hold_local_ray, args=(self.num_cpus, child), daemon=True
            )
            self._head.start()
            child.close()
            try:
                address, auth_mode = self._head_pipe.recv()
            except EOFError:
                self._head.join()
                raise RuntimeError(
                    f"the local Ray instance did not start (its process exited with "
                    f"{self._head.exitcode})"
                ) from None
            if auth_mode is not None and os.environ.get("RAY_AUTH_MODE") != auth_mode:
                # A new local instance requires the token in ~/.ray/auth_token by default, and a
                # client given an address sends it only in that mode; Ray's own way to switch (its
                # _enable_token_auth): the variable, then its config re-read.
                os.environ["RAY_AUTH_MODE"] = auth_mode
                ray._raylet.Config.initialize("")
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except BaseException:
            self._stop_head()
            raise
        return self

    def __exit__(self, *exc):
        import ray

        ray.shutdown()
        self._stop_head()
        return False

    def _stop_head(self):
        if self._head is not None:
            try:
                # stop: the head process shuts its instance down and exits
                self._head_pipe.send(None)
            except OSError:  # it is gone already
                pass
            self._head.join(timeout=120)
            if self._head.is_alive():
                self._head.terminate()
                self._head.join()
            self._head_pipe.close()
            self._head = None

    def run(self, job: Job, tasks: list[Task], report) -> Iterator[tuple[int, list]]:
        import ray

        from . import pools as _pools

        sources = sorted({p["data"] for points, _ in tasks for p in points if "data" in p})
        pools = {s: ray.put(_pools.load(s)) for s in sources}
        remote = ray.remote(num_cpus=1)(_ray_work)
        settings = jax_settings()
        refs = {
            remote.remote(job, task, {s: pools[s] for s in sources}, self.cache_dir, settings): i
            for i, task in enumerate(tasks)
        }
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                yield refs.pop(ref), ray.get(ref)


def _hold_local_ray(num_cpus: int | None, conn) -> None:
    """In a fresh process in which JAX never starts: start a local Ray instance, send its address
    through `conn`, and keep it until told to stop (or until the driver is gone and the pipe
    closes)."""
    import ray

    context = ray.init(
        num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    conn.send((context.address_info["gcs_address"], os.environ.get("RAY_AUTH_MODE")))
    try:
        conn.recv()
    except EOFError:
        pass
    ray.shutdown()


def _ray_work(job: Job, task: Task, pool_refs: dict, cache_dir: str | None, settings: dict):
    import ray

    from . import pools

    for source, ref in pool_refs.items():
        pools.provide(source, ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref)
    _init_worker(None, cache_dir, None, settings)
    return job(*task)


def default_workers() -> int:
    """One worker per GPU where JAX finds several; else half the cores (XLA's own threads use the
    rest), at most 8, and 1 (in-process) on a machine of fewer than 4 cores."""
    if gpu_count() > 1:
        return gpu_count()
    cores = os.cpu_count() or 1
    return 1 if cores < 4 else min(cores // 2, 8)


def gpu_count() -> int:
    import jax

    return sum(d.platform == "gpu" for d in jax.devices())
