"""``python -m bench.spam``: the spam filter against SpamAssassin and rspamd on one split.

Reads the labelled corpus (``../shared/corpus-spam`` by default; see its README), splits each
label chronologically by the Date field (the earlier half trains, the later half is classified:
real mail drifts, so the test set is newer than what was learnt), and runs every engine on the
same messages:

- **mailwright**: the built-in filter exactly as the MX runs it (`SpamFilter.judge` on a real
  SQLite store; every test that needs no DNS), trained through the store;
- **spamassassin**: spamd with its stock rules and Bayes, trained with ``sa-learn`` on the same
  training set (network tests off: there is no network here);
- **rspamd**: rspamd with its Bayes classifier on a private Redis, trained with ``rspamc
  learn_spam/learn_ham`` on the same set (network modules off).

Before anything sees them, messages lose what the collecting site added (the mbox ``From ``
line, ``Return-Path``, ``Delivered-To``, ``X-Spam-*`` and the ``Received`` lines of the
collector's own hosts): the README warns that these are spread unevenly over ham and spam, so a
result resting on them would mean nothing at a real MX. ``--raw`` keeps them, to show the
difference. Figures go to stdout (a Markdown table) and, with ``--json``, to a file.

``--feedback errors,all`` adds rows for the built-in filter with a user in the loop: the test
half's messages arrive in Date order and each mistake is corrected (``errors``: a missed spam
moved into Junk, a misfiled ham moved out, learnt with its sender as the server's trainer learns
them) or every message is sorted (``all``) right after it was classified. That is what a real
deployment gets on a chronological split, and is reported beside the plain figure, never instead.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_corpus() -> Path:
    """$MAILWRIGHT_SPAM_CORPUS, else the nearest ``shared/corpus-spam`` beside an ancestor of
    the checkout (``../shared`` for a clone, further up for a worktree)."""
    env = os.environ.get("MAILWRIGHT_SPAM_CORPUS")
    if env:
        return Path(env)
    for parent in ROOT.parents:
        candidate = parent / "shared" / "corpus-spam"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "corpus-spam"


COLLECTOR_HOSTS = (b"localhost", b"fetchmail", b"dogma.slashnull.org", b"netnoteinc.com",
                   b"jmason.org", b"127.0.0.1")  # fmt: skip
ROUTE_FIELDS = (b"return-path:", b"delivered-to:", b"x-spam", b"x-original-to:", b"status:",
                b"x-status:", b"x-keywords:", b"x-uid:", b"x-loop:")  # fmt: skip


@dataclass
class Sample:
    name: str
    label: str  # "ham", "spam", or "hardham" (generated solicited commercial mail, bench/hardham.py)
    raw: bytes
    when: float


@dataclass
class Result:
    engine: str
    ham: int = 0
    spam: int = 0
    ham_misfiled: int = 0  # ham scored junk or worse
    ham_refused: int = 0  # ham that would have been refused at SMTP time
    spam_caught: int = 0
    hard_ham: int = 0
    hard_ham_misfiled: int = 0
    seconds_cpu: float = 0.0
    seconds_wall: float = 0.0
    train_seconds: float = 0.0
    note: str = ""
    misfiled: list[str] = field(default_factory=list)

    def row(self) -> str:
        if self.note and not self.ham + self.spam + self.hard_ham:
            return f"| {self.engine} | – | – | – | – | – | {self.note} |"
        fp = 100.0 * self.ham_misfiled / max(self.ham, 1)
        caught = 100.0 * self.spam_caught / max(self.spam, 1)
        per_core = (self.ham + self.spam) / self.seconds_cpu if self.seconds_cpu else 0.0
        ms = 1000.0 * self.seconds_cpu / max(self.ham + self.spam, 1)
        hard = 100.0 * self.hard_ham_misfiled / max(self.hard_ham, 1)
        return (f"| {self.engine} | {fp:.2f} % ({self.ham_misfiled}/{self.ham}) | "
                f"{self.ham_refused} | {caught:.1f} % ({self.spam_caught}/{self.spam}) | "
                f"{hard:.1f} % ({self.hard_ham_misfiled}/{self.hard_ham}) | "
                f"{per_core:.0f}/s ({ms:.2f} ms) | {self.note} |")  # fmt: skip


def clean(raw: bytes) -> bytes:
    """The message without the collecting site's additions, with CRLF line ends."""
    raw = raw.replace(b"\r\n", b"\n")
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    head, sep, body = raw.partition(b"\n\n")
    fields: list[list[bytes]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    kept = []
    for f in fields:
        first = f[0].lower()
        if first.startswith(ROUTE_FIELDS):
            continue
        if first.startswith(b"received:") and any(h in b" ".join(f).lower() for h in COLLECTOR_HOSTS):
            continue
        kept.append(b"\n".join(f))
    return (b"\n".join(kept) + sep + body).replace(b"\n", b"\r\n")


def as_crlf(raw: bytes) -> bytes:
    raw = raw.replace(b"\r\n", b"\n")
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return raw.replace(b"\n", b"\r\n")


def _date(raw: bytes) -> float:
    m = re.search(rb"^Date:[ \t]*(.+)$", raw[:20000], re.MULTILINE | re.IGNORECASE)
    if m:
        try:
            return email.utils.parsedate_to_datetime(m.group(1).decode("latin-1").strip()).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return 0.0


def load(corpus: Path, *, raw_mode: bool, ham_test: int, seed: int,
         split: str = "date") -> tuple[list[Sample], list[Sample]]:  # fmt: skip
    """(training set, test set): per label, the earlier half by Date trains (``split="date"``),
    or a random half (``split="random"``, the usual cross-validation that ignores drift)."""
    train: list[Sample] = []
    test: list[Sample] = []
    rng = random.Random(seed)
    for label in ("ham", "spam"):
        samples = []
        for path in sorted((corpus / label).glob("*")):
            data = path.read_bytes()
            body = as_crlf(data) if raw_mode else clean(data)
            samples.append(Sample(path.name, label, body, _date(data)))
        samples.sort(key=lambda s: (s.when, s.name))
        if split == "random":
            rng.shuffle(samples)
        half = len(samples) // 2
        train += samples[:half]
        later = samples[half:]
        if label == "ham" and ham_test and len(later) > ham_test:
            later = sorted(rng.sample(later, ham_test), key=lambda s: (s.when, s.name))
        test += later
    return train, test


def hard_ham_samples(count: int) -> list[Sample]:
    """Generated solicited commercial mail (bench/hardham.py): the corpus has almost none."""
    from bench.hardham import hard_ham

    return [Sample(name, "hardham", raw, 0.0) for name, raw in hard_ham(count)]


# ------------------------------------------------------------------- mailwright


async def run_mailwright(train: Sequence[Sample], test: Sequence[Sample], workdir: Path,
                         feedback: str = "") -> Result:  # fmt: skip
    """`feedback`: "" classifies the test half with what the training half taught, nothing
    more (the plain figure); "errors" has a user correct each mistake as mail flows (the
    corpus' test messages in Date order: a missed spam moved into Junk is learnt as spam, a
    misfiled ham moved out of it as ham, each with its sender, as `spam.trainer` learns them);
    "all" learns every test message with its label right after classifying it (a user who
    sorts everything: the upper bound). The generated hard ham comes after the flow and is
    never learnt. CPU time counts only the classifying, not the lessons."""
    from mailwright.spam.classifier import sender_keys
    from mailwright.spam.service import SpamFilter
    from mailwright.spam.settings import SpamSettings
    from mailwright.store.sqlite import SQLiteStore

    store = SQLiteStore(workdir / f"mailwright-data{'-' + feedback if feedback else ''}", meta_parser=None)
    await store.open()
    result = Result("mailwright" if not feedback else f"mailwright, user feedback ({feedback})")
    if feedback:
        flow = sorted((s for s in test if s.label != "hardham"), key=lambda s: (s.when, s.name))
        test = flow + [s for s in test if s.label == "hardham"]
    try:
        await store.add_domain("bench.test")
        account = await store.add_account("user@bench.test", "x")
        spam_filter = SpamFilter(SpamSettings(), store, None, "mx.bench.test")
        classifier = spam_filter.classifier
        started = time.monotonic()
        for s in train:
            analysis = await classifier.analyse(s.raw)
            await classifier.learn(account.id, hashlib.sha256(s.raw).hexdigest(), s.label, analysis)
        result.train_seconds = time.monotonic() - started
        cpu = 0.0
        wall0 = time.monotonic()
        lessons = 0
        for s in test:
            cpu0 = time.process_time()
            judgement = await spam_filter.judge(s.raw, recipients=["user@bench.test"],
                                                account_ids=[account.id])  # fmt: skip
            cpu += time.process_time() - cpu0
            junk = judgement.verdict != "ham"
            _count(result, s, junk, judgement.verdict == "reject")
            wrong = junk != (s.label == "spam")
            if s.label != "hardham" and (feedback == "all" or (feedback == "errors" and wrong)):
                analysis = await classifier.analyse(s.raw)
                await classifier.learn(account.id, hashlib.sha256(s.raw).hexdigest(), s.label, analysis,
                                       senders=sender_keys(analysis.document, None))  # fmt: skip
                lessons += 1
        result.seconds_cpu = cpu
        result.seconds_wall = time.monotonic() - wall0
    finally:
        await store.close()
    result.note = "built-in tests without DNS; Bayes on the store"
    if feedback:
        result.note += f"; {lessons} lessons from the test flow"
    return result


def _count(result: Result, s: Sample, junk: bool, refused: bool = False) -> None:
    if s.label == "hardham":
        result.hard_ham += 1
        result.hard_ham_misfiled += int(junk)
        if refused:
            result.ham_refused += 1
        if junk:
            result.misfiled.append(s.name)
    elif s.label == "ham":
        result.ham += 1
        if junk:
            result.ham_misfiled += 1
            result.misfiled.append(s.name)
        if refused:
            result.ham_refused += 1
    else:
        result.spam += 1
        result.spam_caught += int(junk)


# ------------------------------------------------------------------- SpamAssassin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_all(folder: Path, samples: Sequence[Sample]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(samples):
        p = folder / f"{i:05d}-{s.label}.eml"
        p.write_bytes(s.raw.replace(b"\r\n", b"\n"))
        paths.append(p)
    return paths


def _chunks(items: Sequence[Path], n: int = 200) -> list[Sequence[Path]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def _wait_port(port: int, deadline: float, alive: Callable[[], bool]) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not alive():
            raise RuntimeError("the server exited during start-up")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"port {port} did not open")


def run_spamassassin(train: Sequence[Sample], test: Sequence[Sample], workdir: Path) -> Result:
    result = Result("SpamAssassin")
    spamd, salearn = shutil.which("spamd") or "/usr/sbin/spamd", shutil.which("sa-learn")
    if not Path(spamd).exists() or salearn is None:
        result.note = "not installed (apt-get install spamassassin spamc)"
        return result
    site = workdir / "sa-site"
    shutil.copytree("/etc/spamassassin", site)
    bayes = workdir / "sa-bayes"
    bayes.mkdir()
    os.chmod(bayes, 0o777)
    (site / "zz_bench.cf").write_text(
        f"use_bayes 1\nbayes_auto_learn 0\nbayes_path {bayes}/bayes\nbayes_file_mode 0777\n"
        "skip_rbl_checks 1\ndns_available no\nuse_razor2 0\nuse_pyzor 0\n"
        "bayes_learn_to_journal 0\nlock_method flock\n"
    )
    common = ["--siteconfigpath", str(site)]
    started = time.monotonic()
    for label in ("spam", "ham"):
        paths = _write_all(workdir / f"sa-train-{label}", [s for s in train if s.label == label])
        for chunk in _chunks(paths):
            subprocess.run([salearn, *common, f"--{label}", *map(str, chunk)], check=True,
                           capture_output=True, timeout=1800)  # fmt: skip
    subprocess.run([salearn, *common, "--sync"], check=True, capture_output=True, timeout=600)
    result.train_seconds = time.monotonic() - started
    for p in bayes.iterdir():
        os.chmod(p, 0o666)
    port = _free_port()
    proc = subprocess.Popen(
        [spamd, *common, "--listen", f"127.0.0.1:{port}", "--max-children", "1",
         "--min-children", "1", "--nouser-config", "-u", "nobody", "--syslog", "stderr"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_port(port, 180, lambda: proc.poll() is None)
        result.note = "stock rules + Bayes, no network tests; one spamd child, wall clock"
        asyncio.run(_ask_spamd_all(result, test, port))
    finally:
        proc.terminate()
        proc.wait(30)
    return result


async def _ask_spamd_all(result: Result, test: Sequence[Sample], port: int) -> None:
    import aiospamc

    wall0 = time.monotonic()
    for s in test:
        response = await aiospamc.check(s.raw, host="127.0.0.1", port=port)
        spam = response.headers["Spam"]
        _count(result, s, float(spam.score) >= float(spam.threshold))
    result.seconds_wall = time.monotonic() - wall0
    # one single-threaded spamd child does the work: its wall clock is its CPU time
    result.seconds_cpu = result.seconds_wall


# ------------------------------------------------------------------- rspamd


RSPAMD_OVERRIDE = {
    "worker-normal.inc": 'bind_socket = "127.0.0.1:{normal}";\ncount = 1;\n',
    "worker-controller.inc": 'bind_socket = "127.0.0.1:{controller}";\ncount = 1;\n'
                             'password = "";\nenable_password = "";\nsecure_ip = "127.0.0.1";\n',
    "worker-proxy.inc": "enabled = false;\n",
    "worker-fuzzy.inc": "enabled = false;\n",
    "options.inc": 'dns {{ nameserver = ["127.0.0.1:{dns}"]; timeout = 0.1s; retransmits = 1; }}\n',
}
RSPAMD_LOCAL = {
    "redis.conf": 'servers = "127.0.0.1:{redis}";\n',
    "classifier-bayes.conf": 'backend = "redis";\nservers = "127.0.0.1:{redis}";\n'
                             "min_learns = 10;\nautolearn = false;\n",
}
RSPAMD_OFF = ("rbl", "surbl", "fuzzy_check", "asn", "emails", "phishing", "url_reputation",
              "neural", "ratelimit", "greylist", "replies", "dmarc", "spf", "dkim", "arc",
              "dkim_signing", "reputation", "history_redis", "mx_check", "url_redirector",
              "maps_stats", "rbl_group")  # fmt: skip


def run_rspamd(train: Sequence[Sample], test: Sequence[Sample], workdir: Path) -> Result:
    result = Result("rspamd")
    rspamd, rspamc = shutil.which("rspamd"), shutil.which("rspamc")
    redis = shutil.which("redis-server")
    if rspamd is None or rspamc is None or redis is None:
        result.note = "not installed (apt-get install rspamd redis-server)"
        return result
    conf = workdir / "rspamd"
    shutil.copytree("/etc/rspamd", conf)
    ports = {"normal": _free_port(), "controller": _free_port(), "redis": _free_port(),
             "dns": _free_port()}  # fmt: skip
    local, override = conf / "local.d", conf / "override.d"
    local.mkdir(exist_ok=True)
    override.mkdir(exist_ok=True)
    for name, text in RSPAMD_LOCAL.items():
        (local / name).write_text(text.format(**ports))
    for name, text in RSPAMD_OVERRIDE.items():
        (override / name).write_text(text.format(**ports))
    for module in RSPAMD_OFF:
        (local / f"{module}.conf").write_text("enabled = false;\n")
    (workdir / "redis").mkdir()
    redis_proc = subprocess.Popen(
        [redis, "--port", str(ports["redis"]), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(workdir / "redis")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    rundir = workdir / "rspamd-run"
    rundir.mkdir()
    os.chmod(rundir, 0o777)
    proc = subprocess.Popen(
        [rspamd, "-f", "-u", "_rspamd", "-g", "_rspamd", "-c", str(conf / "rspamd.conf"),
         "--insecure", f"--var=DBDIR={rundir}", f"--var=RUNDIR={rundir}",
         f"--var=LOGDIR={rundir}", f"--var=LOCAL_CONFDIR={conf}", f"--var=CONFDIR={conf}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_port(ports["redis"], 30, lambda: redis_proc.poll() is None)
        _wait_port(ports["controller"], 600, lambda: proc.poll() is None)
        _wait_port(ports["normal"], 600, lambda: proc.poll() is None)
        started = time.monotonic()
        for label in ("spam", "ham"):
            paths = _write_all(workdir / f"rs-train-{label}", [s for s in train if s.label == label])
            for chunk in _chunks(paths):
                subprocess.run([rspamc, "-h", f"127.0.0.1:{ports['controller']}", f"learn_{label}",
                                *map(str, chunk)], check=True, capture_output=True, timeout=1800)  # fmt: skip
        result.train_seconds = time.monotonic() - started
        wall0 = time.monotonic()
        asyncio.run(_ask_rspamd_all(result, test, ports["normal"]))
        result.seconds_wall = time.monotonic() - wall0
        result.seconds_cpu = result.seconds_wall  # one worker process does the work
        result.note = "stock rules + Bayes (Redis), network modules off; one worker, wall clock"
    except (RuntimeError, subprocess.SubprocessError) as exc:
        result.note = f"could not run: {exc}"
    finally:
        proc.terminate()
        redis_proc.terminate()
        proc.wait(30)
        redis_proc.wait(30)
    return result


async def _ask_rspamd_all(result: Result, test: Sequence[Sample], port: int) -> None:
    from mailwright.spam.external import ask_rspamd

    for s in test:
        # a loopback client: rspamd skips its connection tests (reverse DNS, HELO), which would
        # judge the benchmark's made-up client rather than the message, as our DNS-free run does
        reason = await ask_rspamd(f"http://127.0.0.1:{port}", s.raw, peer_ip="127.0.0.1",
                                  helo="localhost", sender="", recipients=[],
                                  timeout=60)  # fmt: skip
        if reason is None:
            raise RuntimeError("rspamd gave no answer")
        score, required = _rspamd_numbers(reason.text)
        # rspamd's own "add header" action (6 by default) files mail as junk
        _count(result, s, score >= min(6.0, required), score >= required)


def _rspamd_numbers(text: str) -> tuple[float, float]:
    m = re.search(r"rspamd score (-?[\d.]+) of (-?[\d.]+)", text)
    assert m is not None, text
    return float(m.group(1)), float(m.group(2))


# ------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spam", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=default_corpus())
    p.add_argument("--engines", default="mailwright,spamassassin,rspamd")
    p.add_argument("--ham-test", type=int, default=600,
                   help="classify at most this many of the later ham (0 = all); all later spam")
    p.add_argument("--hard-ham", type=int, default=120,
                   help="also classify this many generated newsletters/receipts (bench/hardham.py)")
    p.add_argument("--raw", action="store_true", help="keep the collection headers (artefact check)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--split", choices=["date", "random"], default="date",
                   help="date: train on the earlier half (default); random: a random half")
    p.add_argument("--json", type=Path)
    p.add_argument("--feedback", default="",
                   help="also run mailwright with a user correcting it as mail flows: 'errors'"
                        " (each mistake learnt), 'all' (every message learnt), or both, comma-separated;"
                        " reported as extra rows, the plain figure is unchanged")  # fmt: skip
    args = p.parse_args(argv)
    if not (args.corpus / "ham").is_dir():
        print(f"bench.spam: no corpus at {args.corpus} (see shared/corpus-spam/README.md)",
              file=sys.stderr)  # fmt: skip
        return 2
    train, test = load(args.corpus, raw_mode=args.raw, ham_test=args.ham_test, seed=args.seed,
                       split=args.split)
    test += hard_ham_samples(args.hard_ham)
    n_ham = sum(s.label == "ham" for s in train)
    how = ("earlier half by Date", "later half") if args.split == "date" else ("random half", "rest")
    print(f"training on {n_ham} ham + {len(train) - n_ham} spam ({how[0]}), "
          f"classifying {sum(s.label == 'ham' for s in test)} ham + "
          f"{sum(s.label == 'spam' for s in test)} spam ({how[1]}) + {args.hard_ham} hard ham"
          f"{', collection headers kept' if args.raw else ', collection headers removed'}",
          file=sys.stderr)  # fmt: skip
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-spam-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        for engine in args.engines.split(","):
            started = time.monotonic()
            if engine == "mailwright":
                results.append(asyncio.run(run_mailwright(train, test, work)))
                for mode in filter(None, args.feedback.split(",")):
                    if mode not in ("errors", "all"):
                        print(f"bench.spam: unknown feedback mode {mode}", file=sys.stderr)
                        return 2
                    results.append(asyncio.run(run_mailwright(train, test, work, mode)))
            elif engine == "spamassassin":
                results.append(run_spamassassin(train, test, work))
            elif engine == "rspamd":
                results.append(run_rspamd(train, test, work))
            else:
                print(f"bench.spam: unknown engine {engine}", file=sys.stderr)
                return 2
            print(f"{engine}: done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    print("| engine | ham misfiled (false positives) | ham refused at SMTP | spam caught |"
          " hard ham misfiled | classified per second per core (CPU per message) | notes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(r.row())
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
