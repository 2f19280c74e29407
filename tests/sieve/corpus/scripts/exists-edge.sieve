require ["fileinto"];
if exists "X-EMPTY" { fileinto "x1"; }
if exists ["subject", "SUBJECT"] { fileinto "x2"; }
if header :is "x-empty" "" { fileinto "x3"; }
if size :over 0 { fileinto "x4"; }
if size :under 1M { fileinto "x5"; }
if anyof (false, not true) { fileinto "never"; } else { fileinto "x6"; }
if allof (true, anyof (false, true)) { fileinto "x7"; }
