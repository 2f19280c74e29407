require ["fileinto", "virustest", "relational", "comparator-i;ascii-numeric", "variables"];
if virustest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "untested"; }
if virustest :matches "*" { fileinto "virus-${1}"; }
