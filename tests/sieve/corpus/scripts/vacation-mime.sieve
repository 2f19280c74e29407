require ["vacation"];
vacation :mime :days 10 text:
Content-Type: text/plain; charset=utf-8

Bin bis Montag weg.
.
;
