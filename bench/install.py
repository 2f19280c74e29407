"""Installs what the benchmark needs, when it is missing (Debian packages and PyPI packages).

Only the packages named here are installed, through apt-get and pip; a failure makes the
servers that need them "unavailable" with the reason, it never stops the whole run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

from bench.common import log

APT_FOR_SERVER = {
    "postfix": ("postfix", "dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd"),
    "dovecot": ("dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd"),
}
PIP_FOR_SERVER = {"aiosmtpd": ("aiosmtpd",)}
PIP_ALWAYS = ("matplotlib",)

_apt_updated = False


def _dpkg_installed(pkg: str) -> bool:
    cp = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True)
    return cp.returncode == 0 and b"install ok installed" in cp.stdout


def ensure_apt(packages: tuple[str, ...], allow: bool) -> str | None:
    """None when every package is installed (installing the missing ones), else why not."""
    global _apt_updated
    if shutil.which("dpkg-query") is None:
        return "not a Debian system (no dpkg-query)"
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return None
    if not allow:
        return f"not installed: {' '.join(missing)} (run without --no-install)"
    if os.geteuid() != 0:
        return f"not installed and not root: {' '.join(missing)}"
    log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if "postfix" in missing:
        # "Local only" with example.test: no question asked, nothing relayed anywhere.
        subprocess.run(["debconf-set-selections"], input=(
            b"postfix postfix/main_mailer_type select Local only\n"
            b"postfix postfix/mailname string example.test\n"), capture_output=True)
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    if not _apt_updated:
        subprocess.run(["apt-get", *lock, "update", "-q"], capture_output=True, env=env)
        _apt_updated = True
    cp = subprocess.run(["apt-get", *lock, "install", "-y", "-q", *missing], capture_output=True,
                        env=env)
    still = [p for p in missing if not _dpkg_installed(p)]
    if still:
        err = cp.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return f"apt-get could not install {' '.join(still)}: {err[0]}"
    return None


def ensure_pip(modules: tuple[str, ...], allow: bool) -> str | None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    if not allow:
        return f"Python package missing: {' '.join(missing)}"
    log(f"installing {' '.join(missing)} with pip")
    cp = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing],
                        capture_output=True)
    importlib.invalidate_caches()
    still = [m for m in missing if importlib.util.find_spec(m) is None]
    if cp.returncode != 0 or still:
        err = cp.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return f"pip could not install {' '.join(still or missing)}: {err[0]}"
    return None


def ensure_program(program: str, pip_name: str, allow: bool) -> str | None:
    """A command-line tool shipped on PyPI (py-spy): installed with pip when missing."""
    if shutil.which(program):
        return None
    if not allow:
        return f"{program} not found"
    log(f"installing {pip_name} with pip")
    cp = subprocess.run([sys.executable, "-m", "pip", "install", "-q", pip_name],
                        capture_output=True)
    if cp.returncode != 0 or shutil.which(program) is None:
        return f"pip could not install {pip_name}"
    return None


def ensure_for(server: str, allow: bool) -> str | None:
    """None when ``server`` can be run here, else the reason it cannot."""
    if server in APT_FOR_SERVER:
        return ensure_apt(APT_FOR_SERVER[server], allow)
    if server in PIP_FOR_SERVER:
        return ensure_pip(PIP_FOR_SERVER[server], allow)
    return None
