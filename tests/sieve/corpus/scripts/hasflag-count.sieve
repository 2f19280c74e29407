require ["fileinto", "imap4flags", "relational", "comparator-i;ascii-numeric"];
addflag ["one", "two", "three"];
if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { fileinto "h1"; }
if hasflag :matches "t*" { fileinto "h2"; }
removeflag "two";
if hasflag :count "eq" :comparator "i;ascii-numeric" "2" { fileinto "h3"; }
