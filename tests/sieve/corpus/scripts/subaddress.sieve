require ["fileinto", "subaddress", "envelope"];
if address :user :is "to" "bob" { fileinto "subaddress-1"; }
if address :detail :is "to" "lists" { fileinto "subaddress-2"; }
if address :detail :is "to" "" { fileinto "subaddress-3"; }
if address :detail :matches "to" "*" { fileinto "subaddress-4"; }
if address :user :is "from" "frank" { fileinto "subaddress-5"; }
if address :detail :is "from" "news" { fileinto "subaddress-6"; }
if address :detail :is "to" "x+y" { fileinto "subaddress-7"; }
if envelope :detail "to" "lists" { fileinto "subaddress-8"; }
if envelope :user "to" "bob" { fileinto "subaddress-9"; }
if envelope :detail :matches "from" "*" { fileinto "subaddress-10"; }
