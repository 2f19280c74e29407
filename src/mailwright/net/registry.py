"""Which module serves which protocol key; `app` imports them lazily."""

from __future__ import annotations

FACTORIES: dict[str, str] = {
    "smtp": "mailwright.smtpd.listener:create",
    "submission": "mailwright.smtpd.listener:create",
    "submissions": "mailwright.smtpd.listener:create",
    "imap": "mailwright.imapd.listener:create",
    "imaps": "mailwright.imapd.listener:create",
    "pop3": "mailwright.pop3d.listener:create",
    "pop3s": "mailwright.pop3d.listener:create",
    "http": "mailwright.web.listener:create",
    "managesieve": "mailwright.managesieved.listener:create",
    "https": "mailwright.web.https:create",
}

# Said to a client refused for load before any protocol code runs.
BUSY: dict[str, bytes] = {
    "smtp": b"421 4.7.0 Too many connections, try again later\r\n",
    "submission": b"421 4.7.0 Too many connections, try again later\r\n",
    "submissions": b"421 4.7.0 Too many connections, try again later\r\n",
    "imap": b"* BYE Too many connections, try again later\r\n",
    "imaps": b"* BYE Too many connections, try again later\r\n",
    "pop3": b"-ERR [SYS/TEMP] Too many connections, try again later\r\n",
    "pop3s": b"-ERR [SYS/TEMP] Too many connections, try again later\r\n",
    "managesieve": b'BYE (TRYLATER) "Too many connections, try again later"\r\n',
    "http": b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    "https": b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
}
