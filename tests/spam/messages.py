"""Small hand-written ham and spam for the spam tests (no corpus needed).

Each builder returns CRLF message bytes; `variant` changes a few words so that a set of them
looks like real traffic (recurring vocabulary, differing details).
"""

from __future__ import annotations

HAM_TOPICS = [
    ("Minutes of Tuesday's planning meeting", "attached are the minutes; we agreed to move the "
     "release to Thursday and Alice will review the database migration before then"),
    ("Re: lunch on Friday?", "sounds good, the Thai place near the office at half past twelve; "
     "I will book a table for four"),
    ("Build failure on the integration branch", "the nightly build failed in the parser tests; "
     "the traceback points at the tokenizer change from yesterday, can you have a look"),
    ("Photos from the weekend", "here are the pictures from the hike, the view from the ridge "
     "was wonderful and the weather held until we were back at the car"),
    ("Quarterly report draft", "please review the draft figures for the quarterly report, "
     "especially the section about hosting costs and the support backlog"),
    ("Re: patch for the config loader", "thanks for the patch, I left two review comments about "
     "error messages; otherwise it looks ready to merge"),
    ("Dentist appointment moved", "the practice called, your appointment is now on the 14th at "
     "nine in the morning, bring the insurance card"),
    ("Kernel mailing list digest", "topics today: scheduler latency regression, a proposal for "
     "the new filesystem mount API, and the stable review queue"),
]
SPAM_TOPICS = [
    ("CONGRATULATIONS WINNER!!! CLAIM YOUR PRIZE NOW", "you have been selected as the lucky "
     "winner of our international lottery, claim your cash prize of $1,000,000 today, act now"),
    ("Cheap meds online - no prescription", "buy viagra cialis and other pills at discount "
     "prices, no prescription needed, fast worldwide shipping, order now"),
    ("Make money fast from home", "earn $5000 per week working from home, guaranteed income, "
     "no experience required, click here to start making money today"),
    ("Your account has been suspended", "dear customer your bank account is suspended, verify "
     "your password and credit card details immediately by clicking the link below"),
    ("Hot singles in your area", "lonely singles are waiting to meet you tonight, click here "
     "for free access, no credit card required, limited offer"),
    ("Investment opportunity: 500% returns", "exclusive crypto investment with guaranteed 500% "
     "returns, limited spots, wire the deposit today to secure your profit"),
    ("Lose 30 pounds in 30 days", "miracle diet pills burn fat while you sleep, order your "
     "free trial now, unsubscribe below, limited time offer"),
    ("Replica watches at 90% off", "luxury replica watches rolex omega at unbeatable discount "
     "prices, order now and get free shipping, best offer"),
]


def ham(variant: int = 0, *, sender: str = "alice@friends.example") -> bytes:
    subject, text = HAM_TOPICS[variant % len(HAM_TOPICS)]
    return (
        f"From: Alice Example <{sender}>\r\n"
        f"To: bob@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 7 Dec 2026 10:{variant % 60:02d}:00 +0000\r\n"
        f"Message-ID: <ham{variant}@friends.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Hi Bob,\r\n\r\n{text}.\r\n\r\nNote {variant}: see you then.\r\nAlice\r\n"
    ).encode()


def spam(variant: int = 0, *, sender: str = "promo@offers.example") -> bytes:
    subject, text = SPAM_TOPICS[variant % len(SPAM_TOPICS)]
    return (
        f"From: Best Offers <{sender}>\r\n"
        f"To: bob@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 7 Dec 2026 11:{variant % 60:02d}:00 +0000\r\n"
        f"Message-ID: <spam{variant}@offers.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "\r\n"
        f"<html><body><p><b>{text.upper()}</b></p>"
        f"<p><a href=\"http://offers.example/claim?id={variant}\">CLICK HERE</a></p>"
        f"<p><font size=\"1\">unsubscribe {variant}</font></p></body></html>\r\n"
    ).encode()
