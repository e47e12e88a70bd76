"""gunicorn as lojix serves in production, in `make run` and in `make bench` (the Procfile's
`web`): threaded workers, each thread taking a database connection from its process's psycopg
pool (`config/settings/production.py`) for the length of a request.

    WEB_CONCURRENCY  worker processes (default 2: one per core of the reference machine)
    WEB_THREADS      threads per worker (default 4; the pool's size follows it)
    WEB_KEEPALIVE    seconds an idle keep-alive connection stays open (default 5)
    HOST, PORT       where to listen (default 127.0.0.1:8000)

Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new connections over
them. With one shared socket, whichever worker woke first accepted most of a burst of keep-alive
connections and the other core idled: `make bench` measured the same view at 1,100 or at 3,300
requests/s by chance. (A second server started on the same port by the same user would share
the port instead of failing to start.)
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = int(os.environ.get("WEB_KEEPALIVE", "5"))
reuse_port = True
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
