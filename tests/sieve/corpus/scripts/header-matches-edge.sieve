require ["fileinto"];
if header :matches "subject" "*" { fileinto "header-matches-edge-1"; }
if header :matches "subject" "**" { fileinto "header-matches-edge-2"; }
if header :matches "subject" "?*" { fileinto "header-matches-edge-3"; }
if header :matches "x-empty" "*" { fileinto "header-matches-edge-4"; }
if header :matches "x-empty" "?" { fileinto "header-matches-edge-5"; }
if header :matches "subject" "\\*" { fileinto "header-matches-edge-6"; }
if header :matches "subject" "*!!!*" { fileinto "header-matches-edge-7"; }
if header :matches "subject" "BUY*offer" { fileinto "header-matches-edge-8"; }
if header :comparator "i;octet" :matches "subject" "buy*" { fileinto "header-matches-edge-9"; }
if header :matches "message-id" "<*@*>" { fileinto "header-matches-edge-10"; }
