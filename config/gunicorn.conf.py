"""gunicorn as lojix serves in production, in `make run` and in `make bench` (the Procfile's
`web`): threaded workers, each thread taking a database connection from its process's psycopg
pool (`config/settings/production.py`) for the length of a request.

    WEB_CONCURRENCY  worker processes (default 2: one per core of the reference machine)
    WEB_THREADS      threads per worker (default 4; the pool's size follows it)
    HOST, PORT       where to listen (default 127.0.0.1:8000)
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
