require ["fileinto", "spamtestplus", "relational", "comparator-i;ascii-numeric", "variables"];
if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { fileinto "Junk"; }
if spamtest :percent :matches "*" { fileinto "pct-${1}"; }
