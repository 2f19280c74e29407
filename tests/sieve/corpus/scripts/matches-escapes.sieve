require ["fileinto", "variables"];
if string :matches "a*b" "a\\*b" { fileinto "m1"; }
if string :matches "axb" "a\\*b" { fileinto "m2"; }
if string :matches "a?b" "a\\?b" { fileinto "m3"; }
if string :matches "" "*" { fileinto "m4"; }
if string :matches "" "?" { fileinto "m5"; }
if string :matches "abc" "a*c*" { fileinto "m6-${1}-${2}"; }
if string :matches "aaa" "*a" { fileinto "m7-${1}"; }
if string :matches "abcabc" "*b*" { fileinto "m8-${1}-${2}"; }
if string :matches "x.y.z" "*.*.*" { fileinto "m9-${1}${2}${3}"; }
if header :matches "subject" "qUARTERLY?REPORT*" { fileinto "m10-${1}-${2}"; }
if string :comparator "i;octet" :matches "ABC" "a?c" { fileinto "never"; }
if string :matches "line1\nline2" "*line2" { fileinto "m11"; }
