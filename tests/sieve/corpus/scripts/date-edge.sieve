require ["fileinto", "date", "variables", "relational"];
if date :zone "+1400" :matches "date" "date" "*" { fileinto "plus14-${1}"; }
if date :zone "-1200" :matches "date" "std11" "*" { fileinto "minus12-${1}"; }
if date :originalzone :matches "date" "weekday" "*" { fileinto "wd-${1}"; }
if date :zone "+0000" :value "lt" "date" "iso8601" "2026-12-01T15:00:00Z" { fileinto "lt"; }
if date :zone "+0530" :matches "date" "time" "*" { fileinto "ist-${1}"; }
