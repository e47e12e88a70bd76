"""A real Celery worker and beat as subprocesses of the test run (issue 8, must show), started as
the Procfile starts them (`celery -A config worker` and `celery -A config beat` with
django-celery-beat's database scheduler, and the web process as `gunicorn config.wsgi`),
against the test's own database, Redis and simulated processor store. Nothing is eager and
nothing is in the test's process: a worker can be killed with SIGKILL, as when its machine
dies, and another one started.

The processes run the embedded default settings (`config.settings.local`, which is base.py),
configured the way a deployment is, by environment variables: `DATABASE_URL` names the database
pytest-django created, `REDIS_URL` the test's Redis database, `LOJIX_SIMULATED_GATEWAY_PATH` the
test process's processor store (so the test reads what the worker's processor did), and mail
goes to files under the processes' folder. `config.settings.test` would not do: it runs every
task eagerly, so beat would run its tasks inside itself. Each process is the leader of a new
process group (the worker with its prefork children), which is what gets signalled.
"""

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import redis
import requests
from django.conf import settings
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.celery import app as celery_app

CELERY = str(Path(settings.BASE_DIR) / ".venv" / "bin" / "celery")
GUNICORN = str(Path(settings.BASE_DIR) / ".venv" / "bin" / "gunicorn")
STOP_SECONDS = 10
PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: a forked child only calls it


def database_url(application_name: str = "") -> str:
    """The URL of the database this test process is connected to (pytest-django's test
    database), for processes that must share it; their connections carry `application_name`
    in `pg_stat_activity` when one is given."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    query = f"?application_name={quote(application_name, safe='')}" if application_name else ""
    return f"postgres://{credentials}@{host}/{quote(db['NAME'], safe='')}{query}"


class CeleryProcesses:
    """Workers, one beat and web servers in subprocesses; `stop()` ends every one of them (the
    fixture `celery_processes` calls it at teardown, whatever happened)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.mail_folder = folder / "mail"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "PYTHONPATH": str(settings.BASE_DIR),
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "False",
            "LOG_LEVEL": "INFO",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "LOJIX_SIMULATED_GATEWAY_PATH": str(settings.LOJIX_SIMULATED_GATEWAY_PATH),
            "LOJIX_SIMULATED_GATEWAY_FAULTS": json.dumps(settings.LOJIX_SIMULATED_GATEWAY_FAULTS),
            "EMAIL_URL": f"filemail:///{self.mail_folder}",  # four slashes: an absolute path
            "MEDIA_ROOT": str(folder / "media"),
        }
        self.workers: list[subprocess.Popen] = []
        self.beat: subprocess.Popen | None = None
        self.webs: list[subprocess.Popen] = []
        self._started = 0

    def configure(self, **variables) -> None:
        """Set environment variables for the processes started from now on (a value that is
        not a string is written as JSON, as `LOJIX_SIMULATED_GATEWAY_FAULTS` is read)."""
        for name, value in variables.items():
            self.env[name] = value if isinstance(value, str) else json.dumps(value)

    def start_worker(self, concurrency: int = 2) -> subprocess.Popen:
        """Start a worker with `concurrency` prefork processes; returns once it answers a ping."""
        self._started += 1
        name = f"test-worker-{self._started}@{socket.gethostname()}"
        process = self._spawn(
            f"worker-{self._started}",
            ["worker", "--loglevel", "INFO", "--concurrency", str(concurrency), "-n", name],
            ["--without-gossip", "--without-mingle"],
        )
        self.workers.append(process)
        self._wait(
            process,
            lambda: celery_app.control.ping(destination=[name], timeout=0.5),
            "answer a ping",
        )
        return process

    def kill_worker(self) -> None:
        """SIGKILL the newest running worker and its pool: no shutdown, no ack, no cleanup."""
        process = next(p for p in reversed(self.workers) if p.poll() is None)
        _kill(process)
        process.wait(timeout=STOP_SECONDS)

    def start_beat(self) -> subprocess.Popen:
        """Start the one beat, with the database scheduler; returns once it has installed
        CELERY_BEAT_SCHEDULE into the database (django-celery-beat does that as it starts,
        resetting each entry's schedule to the one in settings)."""
        assert self.beat is None, "exactly one beat runs"
        self.beat = self._spawn(
            "beat",
            ["beat", "--loglevel", "INFO"],
            ["-S", "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1"],
        )
        tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
        self._wait(
            self.beat,
            lambda: PeriodicTask.objects.filter(task__in=tasks).count() == len(tasks),
            "install the schedule",
        )
        return self.beat

    def start_web(self, workers: int = 2, threads: int = 4, application_name: str = "") -> str:
        """Start the web process as the Procfile does (gunicorn with config/gunicorn.conf.py:
        `workers` processes of `threads` threads) on a free port; returns its base URL once
        `/healthz` answers. With `application_name`, its database connections carry that name
        in `pg_stat_activity`."""
        port = free_port(range(8400, 8500))
        env = dict(
            self.env,
            HOST="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY=str(workers),
            WEB_THREADS=str(threads),
            LOJIX_SITE_URL=f"http://127.0.0.1:{port}",
        )
        if application_name:
            env["DATABASE_URL"] = database_url(application_name)
        command = [GUNICORN, "config.wsgi", "--config", "config/gunicorn.conf.py"]
        command += ["--graceful-timeout", "5", "--no-control-socket"]  # one socket per machine
        with (self.folder / f"web-{port}.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_the_test_process,
            )
        self.webs.append(process)
        url = f"http://127.0.0.1:{port}"
        self._wait(process, lambda: _answers(f"{url}/healthz"), "answer /healthz")
        return url

    def beat_every(self, seconds: int, *tasks: str) -> None:
        """Run these periodic tasks every `seconds`, as an operator does in admin (Periodic
        tasks, Interval): the change is saved to the database and the running beat, which
        looks for changes every second (`--max-interval 1`), runs them on the new interval."""
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=seconds, period=IntervalSchedule.SECONDS
        )
        found = PeriodicTask.objects.filter(task__in=tasks)
        assert {task.task for task in found} == set(tasks), "beat has not installed them"
        for task in found:
            task.interval = interval
            task.save()

    def task_kwargs(self, task: str, **kwargs) -> None:
        """Run periodic `task` with these keyword arguments, as an operator sets them in admin
        (Periodic tasks, Keyword arguments); the running beat picks the change up."""
        periodic = PeriodicTask.objects.get(task=task)
        periodic.kwargs = json.dumps(kwargs)
        periodic.save()

    def stop(self) -> None:
        """End every process, beat first: SIGTERM (a worker finishes the tasks it is running
        and takes no more), then SIGKILL to the process group after STOP_SECONDS."""
        processes = [*self.webs, self.beat, *self.workers]
        running = [p for p in processes if p is not None and p.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            _kill(process)  # whatever is left of its group
            process.wait(timeout=STOP_SECONDS)

    def logs_tail(self, lines: int = 40) -> str:
        """The last lines each process wrote to stdout and stderr, for a failing test's report."""
        return "\n".join(
            f"--- {log.name} ---\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            for log in sorted(self.folder.glob("*.log"))
        )

    def _spawn(self, name: str, arguments: list[str], options: list[str]) -> subprocess.Popen:
        with (self.folder / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [CELERY, "-A", "config", *arguments, *options],
                cwd=settings.BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_the_test_process,
            )

    def _wait(self, process: subprocess.Popen, ready, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{process.args[:4]} exited ({process.returncode})")
            if ready():
                return
            time.sleep(0.2)
        raise AssertionError(f"{process.args[:4]} did not {what} within {seconds} s")


def _die_with_the_test_process() -> None:
    """Run in the child before it execs: the kernel SIGKILLs it if the test process dies first
    (a CI timeout), when no teardown runs (Linux)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
        os.killpg(process.pid, signal.SIGKILL)


def broker_purge() -> None:
    """Empty the test's Redis database: messages a killed worker held unacknowledged (Redis
    gives them back only after the 2 h visibility timeout) and messages beat sent that no
    worker took must not reach another test's worker."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


def _answers(url: str) -> bool:
    try:  # a worker's first request loads Django: slow on a busy machine
        return requests.get(url, timeout=10).status_code == 200
    except requests.RequestException:
        return False


# -- a Redis of the test's own -----------------------------------------------------------------


class PrivateRedis:
    """A throwaway redis-server on a free port from 6390 (ten a pytest-xdist worker, so two
    workers never race for one), stopped by the PID it wrote; the machine's Redis on 6379 is
    never touched. Keeps nothing on disk: stopped, it forgets every message."""

    def __init__(self, folder: Path):
        self.folder = folder
        first = 6390 + 10 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
        self.port = free_port(range(first, first + 10))
        self.pidfile = folder / f"redis-{self.port}.pid"
        self.pid = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again) on its port; returns once it accepts connections."""
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize",
             "yes", "--save", "", "--appendonly", "no", "--pidfile", str(self.pidfile),
             "--dir", str(self.folder)],
            check=True,
        )  # fmt: skip
        wait_until(lambda: self.pidfile.exists() and port_accepts(self.port), "redis to start")
        self.pid = int(self.pidfile.read_text())

    def stop(self) -> None:
        """SIGTERM it; returns once its port refuses connections."""
        if self.pid is None:
            return
        subprocess.run(["kill", str(self.pid)], check=False)
        wait_until(lambda: not port_accepts(self.port), "redis to stop")
        self.pid = None


def port_accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port(ports) -> int:
    """The first of `ports` nothing listens on."""
    return next(port for port in ports if not port_accepts(port))


def wait_until(condition, what: str, seconds: float = 10) -> None:
    """Poll `condition` every 50 ms; AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
