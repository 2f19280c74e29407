require ["fileinto", "comparator-i;ascii-numeric", "relational"];
if header :comparator "i;ascii-numeric" :is "x-priority" "2" { fileinto "numeric-1"; }
if header :comparator "i;ascii-numeric" :is "x-priority" "02" { fileinto "numeric-2"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-priority" "1" { fileinto "numeric-3"; }
if header :value "lt" :comparator "i;ascii-numeric" "x-priority" "10" { fileinto "numeric-4"; }
if header :value "lt" :comparator "i;ascii-casemap" "x-priority" "10" { fileinto "numeric-5"; }
if header :value "ge" "subject" "Q" { fileinto "numeric-6"; }
if header :value "le" "subject" "q" { fileinto "numeric-7"; }
if header :value "ne" :comparator "i;octet" "subject" "x" { fileinto "numeric-8"; }
if header :count "eq" :comparator "i;ascii-numeric" "x-flag" "3" { fileinto "numeric-9"; }
if header :count "ge" :comparator "i;ascii-numeric" ["x-flag","subject"] "4" { fileinto "numeric-10"; }
if header :count "eq" :comparator "i;ascii-numeric" "x-missing" "0" { fileinto "numeric-11"; }
if address :count "eq" :comparator "i;ascii-numeric" "to" "2" { fileinto "numeric-12"; }
if address :count "eq" :comparator "i;ascii-numeric" "to" "3" { fileinto "numeric-13"; }
if header :value "eq" :comparator "i;ascii-numeric" "subject" "abc" { fileinto "numeric-14"; }
