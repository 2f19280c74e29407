"""Shape tokens: what rules engines test (money, capitals, removal offers, header oddities),
given to the classifier as tokens so that it weighs them from what it learnt.

Hand-written rules (SpamAssassin's, rspamd's) catch spam whose words the classifier has never
seen: a new advance-fee story still asks for "US $25m", a new pitch still shouts in capitals
and offers "to be removed". Here such signs become tokens (`shape:...`) instead of fixed
points: the classifier learns each one's weight from the user's own mail, so a sign that is
just as common in someone's ham (a shop's newsletter quoting prices) weighs nothing for them.

Pure, synchronous and bounded: each expression is linear and runs on text the tokenizer has
already bounded (`MAX_TEXT_CHARS`); at most a few dozen tokens per message.
"""

from __future__ import annotations

import email.utils
import re

__all__ = [
    "alignment_shape",
    "body_shape",
    "header_shape",
    "html_shape",
    "registered_domain",
    "route_shape",
]

_MONEY = re.compile(r"(?:us\s?\$|\$|usd|€|£|eur)\s?\d")
_MILLIONS = re.compile(
    r"(?:\d\s?(?:m|million|mil)\b|million|billion)\W{0,3}(?:\w+\W+){0,3}?"
    r"(?:dollars|usd|us\$|pounds|euros)",
)
_PERCENT = re.compile(r"\d\s?%")
_REMOVAL = re.compile(
    r"\b(?:to be removed|remove me|removal instructions|remove in the subject|opt[- ]?out"
    r"|unsubscribe|no longer wish to receive|taken off (?:our|the) list)\b",
)
_BILL = re.compile(r"\b(?:s\.?\s?1618|h\.?\s?r\.?\s?3113|title iii)\b")
_TOLL_FREE = re.compile(r"\b1?[-. (]{0,2}8(?:00|88|77|66)[-. )]{1,2}\d{3}[-. ]\d{4}\b")
_GUARANTEE = re.compile(
    r"\b(?:100% (?:free|guaranteed|satisfaction)|risk[- ]free|no obligation|act now"
    r"|limited time|click here|order now|money back)\b",
)
_SECRECY = re.compile(
    r"\b(?:strictly confidential|next of kin|bank account|transfer of|foreign partner"
    r"|confidential(?:ity)?|beneficiary|urgent (?:business|assistance|reply))\b",
)
# The story an advance-fee letter tells, in families of wording (each family one token, so a
# new letter that words the same move differently still counts): who died, where the money
# waits, what share is offered, why it must stay secret. `_bucket` of the families present is
# a token too. Each alternative is a fixed phrase (linear, as every pattern here); the
# look-ahead names the letters they begin with, so most positions are passed over at once
# (half the time; tests/spam/test_spam_shape_fastpaths.py checks the same matches without it).
_FRAUD_START = r"\b(?=[abcdfghiklmoprstuw0-9])"
_FRAUD = re.compile(
    _FRAUD_START
    + r"(?:(?P<late_relative>late (?:father|husband|wife|mother|brother|uncle|boss|client))"
    r"|(?P<deceased>deceased|passed away|died (?:in|on|of)|(?:was|were) (?:killed|assassinated))"
    r"|(?P<funds_transfer>transfer(?:red|ring)? (?:of )?(?:the |this |these |said )?"
    r"(?:money|funds?|sum|amount|proceeds))"
    r"|(?P<funds_held>security (?:company|firm|vault)|diplomatic|(?:fixed|suspense) account"
    r"|(?:foreign|overseas|offshore) (?:account|partner|bank))"
    r"|(?P<share_offer>\d{1,2}\s?%\s(?:of (?:the|this) (?:total|fund|funds|sum|money|amount))"
    r"|(?:compensation|share|percentage) for (?:your|you|assist))"
    r"|(?P<officialdom>ministry of|minister of|central bank|federal government|contract (?:sum|amount)"
    r"|petroleum corporation)"
    r"|(?P<secrecy>utmost (?:secrecy|confidentiality)|absolute (?:secrecy|confidence)"
    r"|keep (?:this|it) (?:secret|confidential)|top secret)"
    r"|(?P<trust>trustworthy|honest (?:and|person|partner)|reliable (?:person|partner)|god fearing)"
    r"|(?P<urgency>(?:reply|respond|contact me) (?:urgently|immediately))"
    r"|(?P<inheritance>inheritance|bequeath)"
    r"|(?P<blessing>god bless|god willing))\b"
)
_SPACED_LETTERS = re.compile(r"(?<![\w])(?:[A-Za-z][ .*_-]){4,}[A-Za-z](?![\w])")
_LETTER = re.compile(r"[^\W\d_]")
_UPPER = re.compile(r"[A-Z\u00c0-\u00de]")
_FREEMAIL = ("yahoo.", "hotmail.", "msn.", "aol.", "excite.", "mail.com", "lycos.", "netscape.",
             "rediffmail.", "juno.com", "email.com", "usa.net", "gmail.")  # fmt: skip
_ADDR = re.compile(r"([\w.+-]{1,64})@([\w-]{1,63}(?:\.[\w-]{1,63}){1,10})", re.UNICODE)
_ZONE = re.compile(r"(?:[+-]\d{4}|\b(?:UT|UTC|GMT|[ECMP][SD]T|Z)\b)\s*(?:\(.{0,40}\))?\s*$")


def _bucket(n: int) -> str:
    return "0" if n == 0 else "1" if n == 1 else "2-3" if n <= 3 else "4-9" if n <= 9 else "10+"


# Literal text each pattern needs somewhere in its match: a text without any of them cannot
# match, and a substring test costs a fraction of a regular-expression scan (most mail has none).
_NEEDS = {
    _MONEY: ("$", "usd", "€", "£", "eur"),
    _MILLIONS: ("dollars", "usd", "us$", "pounds", "euros"),
    _PERCENT: ("%",),
    _REMOVAL: ("remov", "opt", "unsubscribe", "no longer wish to receive", "taken off"),
    _BILL: ("1618", "3113", "title iii"),
    _TOLL_FREE: ("800", "888", "877", "866"),
    _GUARANTEE: ("100%", "risk", "no obligation", "act now", "limited time", "click here",
                 "order now", "money back"),
    _SECRECY: ("confidential", "next of kin", "bank account", "transfer of", "foreign partner",
               "beneficiary", "urgent "),
}  # fmt: skip
# Five or more letters spelt apart hold a separator, a letter, a separator, a letter... (the
# three inner letters with their separators): a scan that starts at the (rarer) separators.
_SPACED_HINT = re.compile(r"[ .*_-][A-Za-z][ .*_-][A-Za-z][ .*_-][A-Za-z][ .*_-]")
# ASCII octets that are not letters / not capitals: deleting them counts the others (in C)
_ASCII_NON_LETTERS = bytes(c for c in range(128) if not (65 <= c <= 90 or 97 <= c <= 122))
_ASCII_NON_CAPITALS = bytes(c for c in range(128) if not 65 <= c <= 90)


def _may_match(pattern: re.Pattern[str], text: str) -> bool:
    return any(needed in text for needed in _NEEDS[pattern])


def _search(pattern: re.Pattern[str], text: str) -> bool:
    return _may_match(pattern, text) and pattern.search(text) is not None


def _count(pattern: re.Pattern[str], text: str) -> int:
    return len(pattern.findall(text, 0, 100_000)) if _may_match(pattern, text) else 0


def _letters(line: str) -> tuple[int, int]:
    """Letters, and capitals among them, of one line (`_LETTER`, `_UPPER`)."""
    if line.isascii():
        octets = line.encode("ascii")
        letters = len(octets.translate(None, _ASCII_NON_LETTERS))
        if letters < 10:
            return letters, 0
        return letters, len(octets.translate(None, _ASCII_NON_CAPITALS))
    letters = len(_LETTER.findall(line))
    if letters < 10 or line == line.lower():
        return letters, 0
    return letters, len(_UPPER.findall(line))


def body_shape(text: str, tokens: set[str]) -> None:
    """Shape tokens of the visible text of a message (all its text parts joined)."""
    original, text = text, text.lower()  # the patterns are lower-case (IGNORECASE is slow)
    if _search(_MONEY, text):
        tokens.add("shape:money")
    if _search(_MILLIONS, text):
        tokens.add("shape:money-millions")
    if _search(_PERCENT, text):
        tokens.add("shape:percent")
    if _search(_REMOVAL, text):
        tokens.add("shape:removal-offer")
    if _search(_BILL, text):
        tokens.add("shape:cites-spam-law")
    if _search(_TOLL_FREE, text):
        tokens.add("shape:toll-free-number")
    tokens.add("shape:sales-phrases:" + _bucket(_count(_GUARANTEE, text)))
    tokens.add("shape:secrecy-phrases:" + _bucket(_count(_SECRECY, text)))
    families = {m.lastgroup for m in _FRAUD.finditer(text, 0, 100_000)}
    for family in families:
        if family:
            tokens.add("shape:fraud:" + family.replace("_", "-"))
    tokens.add("shape:fraud-families:" + _bucket(len(families)))
    if "!!" in text:
        tokens.add("shape:exclamations")
    caps = lines = 0
    for line in original.splitlines()[:2000]:
        line = line[:500]
        if len(line) < 10:
            continue
        letters, capitals = _letters(line)
        if letters < 10:
            continue
        lines += 1
        if capitals >= 0.8 * letters:
            caps += 1
    tokens.add("shape:capital-lines:" + _bucket(caps))
    # Words spelt apart to get past word filters ("V-I-A-G-R-A", "f r e e"), as SpamAssassin's
    # obfuscation rules look for: five or more single letters joined by one separator
    head = original[:100_000]
    if _SPACED_HINT.search(head) and _SPACED_LETTERS.search(head):
        tokens.add("shape:spaced-letters")

    if lines and caps * 4 >= lines and caps >= 2:
        tokens.add("shape:mostly-capitals")


def header_shape(headers: list[tuple[str, str]], tokens: set[str]) -> None:
    """Shape tokens of the header section (forms spam software gets wrong or gives away)."""
    values: dict[str, str] = {}
    for name, value in headers:
        values.setdefault(name, value)
    sender = _ADDR.search(values.get("from", "")[:2000])
    if sender:
        local, domain = sender.group(1).lower(), sender.group(2).lower()
        if re.search(r"[a-z]\d{2,}$", local):
            tokens.add("shape:from-local-ends-in-digits")
        if any(f in domain for f in _FREEMAIL):
            tokens.add("shape:from-freemail")
        reply = _ADDR.search(values.get("reply-to", "")[:2000])
        if reply and reply.group(2).lower() != domain:
            tokens.add("shape:reply-to-other-domain")
        to = values.get("to", "")
        if sender.group(0).lower() in to.lower()[:2000]:
            tokens.add("shape:to-is-from")
    name, _ = email.utils.parseaddr(values.get("from", "")[:2000])
    letters = [c for c in name if c.isalpha()]
    if len(letters) >= 6 and all(c.isupper() for c in letters):
        tokens.add("shape:from-name-capitals")
    if "to" not in values:
        tokens.add("shape:no-to")
    elif "undisclosed" in values["to"].lower() or not _ADDR.search(values["to"][:2000]):
        tokens.add("shape:to-undisclosed")
    date = values.get("date")
    if date is not None and not _ZONE.search(date[:200]):
        tokens.add("shape:date-without-zone")
    subject = values.get("subject", "")[:500]
    if re.search(r"\s{3,}\S{1,20}$", subject) or re.search(r"\s[#\[]?\d{3,}\]?$", subject):
        tokens.add("shape:subject-tracking-suffix")
    if "$" in subject or "%" in subject:
        tokens.add("shape:subject-money")
    if "!" in subject:
        tokens.add("shape:subject-exclamation")
    to_local = _ADDR.search(values.get("to", "")[:2000])
    if to_local and to_local.group(1).isdigit():
        # "1194@uk.uu.net": a harvested or made-up address that is only a number
        tokens.add("shape:to-numeric-local-part")
    if "=?" in subject:
        charset = re.search(r"=\?([\w-]{1,40})\?", subject)
        if charset and charset.group(1).lower() not in (
            "us-ascii",
            "utf-8",
            "iso-8859-1",
            "iso-8859-15",
            "windows-1252",
        ):
            # RFC 2047 encoded words in a charset other than the common Latin ones
            tokens.add("shape:subject-encoded-other-charset")
    msgid = values.get("message-id", "")
    if msgid and ("@" not in msgid or not msgid.strip().startswith("<")):
        tokens.add("shape:message-id-malformed")  # RFC 5322 3.6.4: "<" id-left "@" id-right ">"
    local = msgid.strip("<> ").partition("@")[0]
    if local and not re.search(r"[a-z]", local) and re.search(r"[A-Z]", local):
        tokens.add("shape:message-id-upper")


def registered_domain(host: str) -> str:
    """The domain a name was registered under, roughly (no public suffix list: the last two
    labels, three under a two-letter country code's short second level such as co.uk)."""
    labels = host.lower().strip(".").split(".")
    if len(labels) > 2 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def alignment_shape(headers: list[tuple[str, str]], link_hosts: set[str], tokens: set[str]) -> None:
    """Whether the sender's domain is the one its message points to: a shop's newsletter
    links to the shop, names it in Message-ID and offers List-Unsubscribe there (RFC 2369);
    mail sent from someone else's domain rarely does all of it."""
    values: dict[str, str] = {}
    for name, value in headers:
        values.setdefault(name, value)
    sender = _ADDR.search(values.get("from", "")[:2000])
    if sender is None:
        return
    domain = registered_domain(sender.group(2))
    unsubscribe = values.get("list-unsubscribe", "")[:2000].lower()
    if unsubscribe:
        hosts = {registered_domain(m.group(2)) for m in _ADDR.finditer(unsubscribe)}
        hosts |= {
            registered_domain(h) for h in re.findall(r"https?://([\w.-]{1,255})", unsubscribe)
        }
        tokens.add("shape:list-unsubscribe-" + ("aligned" if domain in hosts else "elsewhere"))
    msgid = values.get("message-id", "")[:500]
    if "@" in msgid:
        aligned = registered_domain(msgid.rpartition("@")[2].strip("<> ")) == domain
        tokens.add("shape:message-id-" + ("aligned" if aligned else "elsewhere"))
    if link_hosts:
        linked = {registered_domain(h) for h in link_hosts}
        if linked == {domain}:
            tokens.add("shape:links-only-to-sender")
        elif domain in linked:
            tokens.add("shape:links-partly-to-sender")
        else:
            tokens.add("shape:links-elsewhere")


_RECEIVED_DATE = re.compile(r";\s*(.{10,80})$")
_HELO_LITERAL = re.compile(r"^\s*from\s+\[?\d{1,3}(?:\.\d{1,3}){3}\]?[\s(]")


def route_shape(headers: list[tuple[str, str]], tokens: set[str]) -> None:
    """Signs of the route a message took that do not name the route (which would teach the
    collecting site): a Date far from when the message was first received (spam software
    back-dates or forward-dates mail; RFC 5322 3.6.1 says Date is when the message was written,
    and RFC 5321 4.4 has every relay stamp its own time in Received), a client that greeted with
    a bare address, a relay that found no name for the client."""
    received = [v for n, v in headers if n == "received"][:30]
    if not received:
        return
    for value in received:
        if _HELO_LITERAL.match(value):
            tokens.add("shape:received-helo-address")
        if "(unknown [" in value or "unknown (" in value.lower()[:200]:
            tokens.add("shape:received-unknown-client")
    date = next((v for n, v in headers if n == "date"), None)
    stamp = _RECEIVED_DATE.search(received[-1][:500])  # the earliest hop, nearest the author
    if date is None or stamp is None:
        return
    try:
        written = email.utils.parsedate_to_datetime(date[:200])
        first = email.utils.parsedate_to_datetime(stamp.group(1).strip())
        if written.tzinfo is None or first.tzinfo is None:
            return
        skew = (first - written).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return
    if skew > 2 * 86400:
        tokens.add("shape:date-long-before-received")
    elif skew < -6 * 3600:
        tokens.add("shape:date-after-received")


# an opening <a> tag and the text after it; one bounded class per group (linear), the href is
# then looked for in the attributes alone
_ANCHOR = re.compile(r"<a\s([^<>]{0,2000})>([^<]{0,300})", re.IGNORECASE)
_ANCHOR_HREF = re.compile(r"href\s*=\s*[\"']?(https?://[^\"'\s>]{1,300})", re.IGNORECASE)
_COMMENT_SPLIT = re.compile(r"[A-Za-z]<!--[^<>]{0,200}-->[A-Za-z]")
_NUMERIC_ENTITY = re.compile(r"&#(?:x[0-9a-fA-F]{2}|\d{2,3});")
_HOST_IN_TEXT = re.compile(r"(?:https?://)?((?:[\w-]{1,63}\.)+[a-z]{2,12})\b", re.IGNORECASE)
_IMG = re.compile(r"<img\b", re.IGNORECASE)


MAX_HTML_SHAPE_CHARS = 200_000  # of an HTML part's source looked at by `html_shape`


def html_shape(source: str, visible: str, tokens: set[str]) -> None:
    """Shape tokens of an HTML part (its source and its visible text), as rspamd's HTML rules
    and SpamAssassin's HTML_* tests look at it: a link whose text names another site than its
    target (phishing), words split by comments or spelt in numeric character references to
    hide them from word filters, and images with almost no text around them."""
    source = source[:MAX_HTML_SHAPE_CHARS]
    for count, m in enumerate(_ANCHOR.finditer(source), 1):
        if count > 50:
            break
        href = _ANCHOR_HREF.search(m.group(1))
        if href is None:
            continue
        shown = _HOST_IN_TEXT.search(m.group(2).strip())
        target = _HOST_IN_TEXT.search(href.group(1))
        if (
            shown
            and target
            and "." in m.group(2).strip().rstrip(".")
            and registered_domain(shown.group(1)) != registered_domain(target.group(1))
        ):
            tokens.add("shape:link-text-other-site")
            break
    if _COMMENT_SPLIT.search(source):
        tokens.add("shape:html-comment-inside-word")
    if len(_NUMERIC_ENTITY.findall(source)) >= 10:
        tokens.add("shape:html-numeric-entities")
    words = len(visible.split())
    images = len(_IMG.findall(source))
    if images and words < 30:
        tokens.add("shape:html-images-little-text")
    if source and len(visible.strip()) * 10 < len(source) and len(source) > 2000:
        tokens.add("shape:html-mostly-markup")
