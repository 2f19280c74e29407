require ["fileinto", "variables", "relational", "comparator-i;ascii-numeric"];
if string :count "eq" :comparator "i;ascii-numeric" ["a", "", "b"] "2" { fileinto "two"; }
if string :value "gt" :comparator "i;ascii-numeric" "10" "9" { fileinto "gt"; }
if string :is "" "" { fileinto "empty"; }
if string :contains "${nothing}abc" "b" { fileinto "contains"; }
