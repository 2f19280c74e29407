"""Hard ham made here: commercial mail that people asked for, generated, labelled ham.

The shared corpus (2002's SpamAssassin public corpus) has almost no newsletters, receipts or
shipping notices in its ham (its README says so), yet that is the mail a spam filter most
often misfiles: HTML with prices, "% off", tracking links, images and an unsubscribe footer,
from a sender the user never wrote to. No public corpus of such mail can be committed (the
text belongs to its senders), so this module writes its own, deterministically from a seed:
twelve kinds of solicited commercial and automated mail (a shop's sale newsletter, an order
confirmation, a shipping notice, a statement notice, a flight itinerary, a software
project's release newsletter, a webinar invitation, a password reset, a subscription renewal,
a charity's newsletter, a local club's event mail, a price-drop alert), each with varied
brands, products, amounts and layouts, every one with the fields a real bulk sender sets
(List-Unsubscribe, Message-ID, multipart/alternative or HTML only).

It measures one thing: how often a filter trained on the corpus files such mail as junk. It
does not measure how well a filter keeps a real user's newsletters (their words differ);
the texts are invented, the brands fictitious, the domains under .example.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Iterator

__all__ = ["hard_ham"]

BRANDS = ["Northwind Outfitters", "Larkspur Books", "Harbor & Pine", "Copperleaf Kitchen",
          "Bluefin Travel", "Meridian Bank", "Oakridge Garden Supply", "Pixelworks Software",
          "Cedar Lane Wines", "Summit Cycles", "Riverbend Pharmacy", "Alder Music"]  # fmt: skip
PRODUCTS = ["hiking boots", "rain jacket", "cast iron skillet", "espresso grinder",
            "paperback box set", "road bike helmet", "garden hose reel", "wireless speaker",
            "wool blanket", "chef's knife", "travel backpack", "desk lamp", "yoga mat",
            "running shoes", "coffee beans", "watercolour set"]  # fmt: skip
FIRST = ["Anna", "Ben", "Carla", "David", "Elena", "Frank", "Grace", "Hugo", "Ines", "James"]
CITIES = ["Boston", "Denver", "Lisbon", "Dublin", "Seattle", "Toronto", "Lyon", "Oslo"]


def _domain(brand: str) -> str:
    return "".join(c for c in brand.lower() if c.isalnum()) + ".example"


def _price(rng: random.Random) -> str:
    return f"${rng.randint(5, 400)}.{rng.choice(['00', '49', '95', '99'])}"


def _footer(rng: random.Random, brand: str, domain: str, user: str) -> tuple[str, str]:
    text = (f"You are receiving this email because you signed up at {domain}.\n"
            f"To stop receiving these emails, unsubscribe: https://{domain}/u?e={user}\n"
            f"{brand}, 100 Main Street, {rng.choice(CITIES)}. Privacy policy: https://{domain}/privacy\n")  # fmt: skip
    html = (f'<p style="font-size:11px;color:#888">You are receiving this email because you signed up at '
            f'{domain}. <a href="https://{domain}/u?e={user}">Unsubscribe</a> | '
            f'<a href="https://{domain}/privacy">Privacy policy</a><br>{brand}, 100 Main Street</p>')  # fmt: skip
    return text, html


def _sale(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    pct = rng.choice([15, 20, 25, 30, 40, 50])
    items = rng.sample(PRODUCTS, 3)
    subject = rng.choice([f"{pct}% off everything this weekend", f"Our summer sale starts now: up to {pct}% off",
                          f"{name}, your member discount is here", "New arrivals you'll love"])  # fmt: skip
    lines = [f"Hi {name},", "", f"For three days only, take {pct}% off sitewide with code SAVE{pct}."]
    for item in items:
        lines.append(f"- {item.title()}: now {_price(rng)} (was {_price(rng)}) https://{domain}/p/{item.replace(' ', '-')}")
    lines += ["", f"Shop the sale: https://{domain}/sale?utm_source=email&utm_campaign=s{rng.randint(100, 999)}",
              "Free shipping on orders over $50."]  # fmt: skip
    return subject, lines


def _order(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    number = rng.randint(100000, 999999)
    items = rng.sample(PRODUCTS, rng.randint(1, 3))
    lines = [f"Hello {name},", "", f"Thank you for your order #{number}. Here is your receipt.", ""]
    for item in items:
        lines.append(f"{rng.randint(1, 2)} x {item}    {_price(rng)}")
    lines += [f"Shipping: {_price(rng)}", f"Total charged to your card ending {rng.randint(1000, 9999)}: {_price(rng)}",
              "", f"View or manage your order: https://{domain}/orders/{number}",
              "Questions? Reply to this email or call our customer service team."]  # fmt: skip
    return f"Your {brand} order #{number} is confirmed", lines


def _shipping(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    number = rng.randint(100000, 999999)
    track = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(12))
    lines = [f"Hi {name},", "", f"Good news: order #{number} has shipped and should arrive by "
             f"{rng.choice(['Monday', 'Tuesday', 'Thursday', 'Friday'])}.", "",
             f"Carrier tracking number: {track}", f"Track your package: https://{domain}/track/{track}", "",
             "Thanks for shopping with us!"]  # fmt: skip
    return f"Your order has shipped (#{number})", lines


def _statement(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    lines = [f"Dear {name},", "", f"Your monthly statement for the account ending {rng.randint(1000, 9999)} is now available.",
             f"Statement balance: {_price(rng)}", f"Minimum payment due: {_price(rng)} by the {rng.randint(1, 28)}th.", "",
             f"Sign in to online banking to view it: https://secure.{domain}/statements",
             "For your security we never ask for your password or PIN by email."]  # fmt: skip
    return "Your statement is ready", lines


def _flight(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    a, b = rng.sample(CITIES, 2)
    code = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(6))
    lines = [f"Dear {name},", "", f"Your booking {code} is confirmed.", "",
             f"Flight BT{rng.randint(100, 999)}  {a} to {b}  departs {rng.randint(6, 21)}:{rng.choice(['05', '30', '45'])}",
             f"Seat {rng.randint(3, 40)}{rng.choice('ABCDEF')}, one checked bag included.",
             f"Total paid: {_price(rng)}", "",
             f"Manage your booking or check in online: https://{domain}/trips/{code}"]  # fmt: skip
    return f"Booking confirmation {code}: {a} to {b}", lines


def _release(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    version = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}"
    lines = [f"{brand} {version} is out.", "", "What's new in this release:",
             "- faster start-up and lower memory use", "- a new export dialog",
             f"- {rng.randint(20, 90)} bug fixes reported by our users", "",
             f"Download it from https://{domain}/download or update from the Help menu.",
             f"Read the release notes: https://{domain}/notes/{version}", "",
             "Thanks to everyone who sent reports and patches."]  # fmt: skip
    return f"{brand} {version} released", lines


def _webinar(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    lines = [f"Hi {name},", "", f"Join our free webinar on {rng.choice(['spring planting', 'home espresso', 'budget travel', 'saving for retirement'])}",
             f"on {rng.choice(['Tuesday', 'Wednesday', 'Thursday'])} at {rng.randint(1, 8)} pm.", "",
             "Seats are limited, so register now: "
             f"https://{domain}/events/{rng.randint(100, 999)}", "", "See you there,", f"The {brand} team"]  # fmt: skip
    return "You're invited: free live webinar this week", lines


def _reset(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    token = "".join(rng.choice("abcdef0123456789") for _ in range(32))
    lines = [f"Hi {name},", "", "We received a request to reset the password for your account.",
             "Click the link below to choose a new one (it expires in 24 hours):",
             f"https://{domain}/reset?token={token}", "",
             "If you did not ask for this, you can ignore this email."]  # fmt: skip
    return "Reset your password", lines


def _renewal(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    lines = [f"Hello {name},", "", f"Your annual subscription renews on {rng.randint(1, 28)} "
             f"{rng.choice(['March', 'June', 'October', 'December'])} for {_price(rng)}.",
             "No action is needed to keep your membership.", "",
             f"To change your plan or cancel, visit https://{domain}/account/billing"]  # fmt: skip
    return "Your subscription will renew soon", lines


def _charity(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    lines = [f"Dear {name},", "", f"Thanks to supporters like you we planted {rng.randint(2, 90)},000 trees this year.",
             f"A gift of {_price(rng)} before the end of the month will be matched by a local donor.", "",
             f"Donate: https://{domain}/give", f"Read the full annual report: https://{domain}/report"]  # fmt: skip
    return "What your support achieved this year", lines


def _club(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    lines = ["Hi everyone,", "", f"Our next group ride leaves from the shop on Saturday at {rng.randint(7, 10)} am,",
             f"about {rng.randint(30, 90)} km with a coffee stop. Members get 10% off in store that day.", "",
             f"RSVP here: https://{domain}/rides", "", f"{rng.choice(FIRST)}"]  # fmt: skip
    return "Saturday group ride and member discount", lines


def _price_drop(rng: random.Random, brand: str, domain: str, name: str) -> tuple[str, list[str]]:
    item = rng.choice(PRODUCTS)
    lines = [f"Hi {name},", "", f"Good news! The {item} on your wish list dropped to {_price(rng)}.",
             f"Only a few left in stock: https://{domain}/p/{item.replace(' ', '-')}?ref=pricealert", "",
             "You asked us to tell you about price changes. Manage alerts in your account."]  # fmt: skip
    return f"Price drop on your wish list: {item}", lines


KINDS = [_sale, _order, _shipping, _statement, _flight, _release, _webinar, _reset, _renewal,
         _charity, _club, _price_drop]  # fmt: skip


def _html(lines: list[str], brand: str, domain: str, footer: str, rng: random.Random) -> str:
    body = "".join(f"<p>{line}</p>" if line else "" for line in lines)
    logo = f'<img src="https://img.{domain}/logo.png" alt="{brand}" width="160">'
    pixel = f'<img src="https://t.{domain}/o/{rng.randint(10**8, 10**9)}.gif" width="1" height="1">'
    return (f'<html><head><meta charset="utf-8"></head><body style="font-family:Arial">'
            f'<table width="600" align="center"><tr><td>{logo}</td></tr><tr><td>{body}</td></tr>'
            f"<tr><td>{footer}</td></tr></table>{pixel}</body></html>")  # fmt: skip


def hard_ham(count: int = 120, seed: int = 18, user: str = "user@bench.test") -> Iterator[tuple[str, bytes]]:
    """(name, raw CRLF message) for `count` messages, the same for the same seed."""
    rng = random.Random(seed)
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        brand = rng.choice(BRANDS)
        domain = _domain(brand)
        name = rng.choice(FIRST)
        subject, lines = kind(rng, brand, domain, name)
        foot_text, foot_html = _footer(rng, brand, domain, user)
        when = email.utils.formatdate(1033000000 + i * 7919 + rng.randint(0, 5000), localtime=False)
        msgid = f"<{rng.randint(10**9, 10**10)}.{i}@mail.{domain}>"
        sender = rng.choice(["news", "orders", "no-reply", "hello", "info"])
        layout = rng.choice(["alternative", "alternative", "html", "text"])
        head = (f"From: {brand} <{sender}@{domain}>\r\nTo: {name} <{user}>\r\nSubject: {subject}\r\n"
                f"Date: {when}\r\nMessage-ID: {msgid}\r\nMIME-Version: 1.0\r\n"
                f"List-Unsubscribe: <https://{domain}/u?e={user}>, <mailto:unsubscribe@{domain}>\r\n")  # fmt: skip
        text = "\r\n".join([*lines, "", "--", *foot_text.splitlines()]) + "\r\n"
        html = _html(lines, brand, domain, foot_html, rng) + "\r\n"
        if layout == "text":
            body = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
        elif layout == "html":
            body = "Content-Type: text/html; charset=utf-8\r\n\r\n" + html
        else:
            b = f"=_b{rng.randint(10**6, 10**7)}"
            body = (f'Content-Type: multipart/alternative; boundary="{b}"\r\n\r\n'
                    f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}"
                    f"--{b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}--{b}--\r\n")  # fmt: skip
        yield f"hardham-{i:03d}-{kind.__name__.strip('_')}", (head + body).encode()
