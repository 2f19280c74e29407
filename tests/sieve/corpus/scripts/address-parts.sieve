require ["fileinto"];
if address :is "from" "alice@example.com" { fileinto "address-parts-1"; }
if address :domain :is "from" "example.com" { fileinto "address-parts-2"; }
if address :localpart :is "to" "carol" { fileinto "address-parts-3"; }
if address :all :comparator "i;octet" :is "cc" "dave@Example.COM" { fileinto "address-parts-4"; }
if address :domain :is "cc" "example.com" { fileinto "address-parts-5"; }
if address :is "to" "bob@example.net" { fileinto "address-parts-6"; }
if address :matches "to" "*@example.net" { fileinto "address-parts-7"; }
if address :domain :matches "from" "*.example.org" { fileinto "address-parts-8"; }
if address :localpart :contains "from" "news" { fileinto "address-parts-9"; }
if address :is "to" "eve@example.net" { fileinto "address-parts-10"; }
if address :contains "to" "undisclosed" { fileinto "address-parts-11"; }
if address :is "from" "MAILER-DAEMON@example.org" { fileinto "address-parts-12"; }
