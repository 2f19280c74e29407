require ["fileinto", "relational", "comparator-i;ascii-numeric", "variables"];
if string :comparator "i;ascii-numeric" :is "007" "7" { fileinto "c1"; }
if string :comparator "i;ascii-numeric" :is "abc" "xyz" { fileinto "c2"; }
if string :comparator "i;ascii-numeric" :value "gt" "abc" "99999" { fileinto "c3"; }
if string :comparator "i;ascii-numeric" :value "lt" "12abc" "13" { fileinto "c4"; }
if string :comparator "i;octet" :is "A" "a" { fileinto "never"; }
if string :comparator "i;ascii-casemap" :is "Ä" "ä" { fileinto "c5"; }
if string :comparator "i;ascii-casemap" :is "ABC" "abc" { fileinto "c6"; }
if string :comparator "i;ascii-casemap" :value "lt" "apple" "Banana" { fileinto "c7"; }
if string :comparator "i;octet" :value "lt" "apple" "Banana" { fileinto "c8"; }
if string :value "eq" "" "" { fileinto "c9"; }
if string :comparator "i;octet" :contains "Hello" "" { fileinto "c10"; }
