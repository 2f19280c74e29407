"""Several worker processes serving one configuration (`[server] workers`).

`supervisor` binds every listener once, forks the workers that accept on the shared sockets,
restarts a worker that dies and stops them all on SIGTERM; `channel` carries what the workers
must tell each other (store changes for IDLE, failed logins for bans) through the supervisor.
docs/architecture.md "Processes" says which services run in one worker and which in all.
"""
