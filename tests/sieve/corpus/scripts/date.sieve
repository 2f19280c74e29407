require ["fileinto", "date", "relational", "variables"];
if date :is "date" "year" "2026" { fileinto "y2026"; }
if date :originalzone :is "date" "hour" "09" { fileinto "orig09"; }
if date :zone "+0000" :is "date" "hour" "14" { fileinto "utc14"; }
if date :zone "+0000" :is "date" "date" "2026-12-01" { fileinto "utcdate"; }
if date :originalzone :is "date" "zone" "-0500" { fileinto "zone"; }
if date :zone "+0100" :matches "date" "iso8601" "*" { fileinto "iso-${1}"; }
if date :zone "-0800" :matches "date" "std11" "*" { set "std" "${1}"; }
if date :zone "+0000" :is "date" "weekday" "2" { fileinto "tuesday"; }
if date :zone "+0000" :is "date" "julian" "61375" { fileinto "julian"; }
if date :zone "+0000" :value "ge" "date" "date" "2026-12-01" { fileinto "after"; }
if date :zone "+0000" :is "received" "time" "10:00:05" { fileinto "received"; }
if date :zone "+0000" :matches "date" "time" "*:*:*" { fileinto "t-${1}${2}${3}"; }
if currentdate :value "ge" "year" "2020" { fileinto "now-after-2020"; }
if date :is "x-missing" "year" "2026" { fileinto "never"; }
