require ["fileinto", "variables"];
if string :matches "ABC" "a?c" { fileinto "m-${1}"; }
if string :matches "ABC" "ab*" { fileinto "prefix"; }
