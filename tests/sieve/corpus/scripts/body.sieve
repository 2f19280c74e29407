require ["fileinto", "body"];
if body :contains "revenue" { fileinto "b1"; }
if body :text :contains "Grüße" { fileinto "b2"; }
if body :raw :contains "=C3=BC" { fileinto "b3"; }
if body :content "text/html" :contains "<b>" { fileinto "b4"; }
if body :content "text" :contains "Caf\u00e9" { fileinto "b5"; }
if body :content "application/pdf" :contains "JVBER" { fileinto "b6"; }
if body :content "multipart" :contains "prologue" { fileinto "b7"; }
if body :matches "*Freitag*" { fileinto "b8"; }
if body :raw :contains "Content-Type" { fileinto "b9"; }
if body :text :contains "inner body" { fileinto "b10"; }
if body :content "text/plain" :contains "invoice" { fileinto "b11"; }
if body :contains "Café" { fileinto "b12"; }
