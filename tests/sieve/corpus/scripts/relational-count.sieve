require ["fileinto", "relational", "comparator-i;ascii-numeric", "envelope"];
if header :count "ge" :comparator "i;ascii-numeric" "received" "2" { fileinto "r1"; }
if address :count "eq" :comparator "i;ascii-numeric" ["to", "cc"] "3" { fileinto "r2"; }
if envelope :count "eq" :comparator "i;ascii-numeric" "from" "1" { fileinto "r3"; }
if header :count "lt" :comparator "i;ascii-numeric" "x-none" "1" { fileinto "r4"; }
if header :count "gt" "x-flag" "10" { fileinto "r5-casemap"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "7" { fileinto "r6"; }
