require ["fileinto", "envelope"];
if envelope :is "from" "alice@example.com" { fileinto "envelope-1"; }
if envelope :domain :is "from" "example.com" { fileinto "envelope-2"; }
if envelope :localpart :is "to" "bob+lists" { fileinto "envelope-3"; }
if envelope :all :matches "to" "bob*" { fileinto "envelope-4"; }
if envelope :is "to" "bob+lists@example.net" { fileinto "envelope-5"; }
if envelope :contains ["from","to"] "example.net" { fileinto "envelope-6"; }
