require ["fileinto", "spamtest", "relational", "comparator-i;ascii-numeric", "variables"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "6" { fileinto "Junk"; }
if spamtest :is "0" { fileinto "untested"; }
if spamtest :matches "*" { fileinto "score-${1}"; }
