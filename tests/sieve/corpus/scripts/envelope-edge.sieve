require ["fileinto", "envelope", "subaddress"];
if envelope :all :is "from" "ALICE@example.com" { fileinto "e1"; }
if envelope :comparator "i;octet" :is "from" "ALICE@example.com" { fileinto "never"; }
if envelope :domain :is "to" "EXAMPLE.NET" { fileinto "e2"; }
if envelope :detail :contains "to" "list" { fileinto "e3"; }
if envelope :user :is "to" "bob+lists" { fileinto "never"; }
