"""Run a callable from several threads at once, each with its own database connection."""

import threading

from django.db import connection


def run_concurrently(target, count: int) -> list:
    """Start `count` threads at the same moment; return each call's result or exception."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(index):
        try:
            barrier.wait()
            results[index] = target()
        except Exception as error:  # the test inspects what each thread got
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results
