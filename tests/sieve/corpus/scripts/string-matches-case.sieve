require ["fileinto", "variables", "relational"];
if string :matches "ABC" "a?c" { fileinto "m-${1}"; }
if string :matches "ABC" "ab*" { fileinto "prefix"; }
if string :is "ABC" "abc" { fileinto "is"; }
if string :value "lt" "apple" "Banana" { fileinto "value-lt"; }
if string :comparator "i;ascii-casemap" :matches "ABC" "ab*" { fileinto "explicit"; }
