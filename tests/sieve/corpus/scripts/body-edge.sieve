require ["fileinto", "body", "relational", "comparator-i;ascii-numeric"];
if body :content "text/plain" :matches "*Freitag*" { fileinto "e1"; }
if body :content "" :contains "inner" { fileinto "e2"; }
if body :content "message/rfc822" :contains "inner" { fileinto "e3"; }
if body :raw :matches "*JVBER*" { fileinto "e4"; }
if body :text :contains "<b>" { fileinto "e5"; }
if body :content "text/html" :contains "Treffen" { fileinto "e6"; }
if body :is "x" { fileinto "never"; }
if not body :contains "zzzz" { fileinto "e7"; }
