require ["fileinto"];
if header :is "subject" "Quarterly report [ticket #4711]" { fileinto "header-basic-1"; }
if header :contains "Subject" "REPORT" { fileinto "header-basic-2"; }
if header :comparator "i;octet" :contains "subject" "REPORT" { fileinto "header-basic-3"; }
if header :matches "subject" "*report*" { fileinto "header-basic-4"; }
if header :matches "subject" "Quarterly ?eport*" { fileinto "header-basic-5"; }
if header :matches "subject" "*\\[ticket*" { fileinto "header-basic-6"; }
if header :is "x-empty" "" { fileinto "header-basic-7"; }
if header :contains "x-missing" "" { fileinto "header-basic-8"; }
if header :is ["to", "cc"] "carol@example.org" { fileinto "header-basic-9"; }
if header :contains ["from","x-flag"] ["two", "nothing"] { fileinto "header-basic-10"; }
if header :is "subject" "Grüße aus München" { fileinto "header-basic-11"; }
if header :contains "from" "Jörg" { fileinto "header-basic-12"; }
if header :matches "subject" "re: *" { fileinto "header-basic-13"; }
if header :matches "subject" "*?" { fileinto "header-basic-14"; }
