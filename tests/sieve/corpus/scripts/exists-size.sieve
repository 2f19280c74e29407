require ["fileinto"];
if exists "list-id" { fileinto "exists-size-1"; }
if exists ["from", "to"] { fileinto "exists-size-2"; }
if exists ["from", "x-nope"] { fileinto "exists-size-3"; }
if size :over 500 { fileinto "exists-size-4"; }
if size :under 400 { fileinto "exists-size-5"; }
if size :over 1K { fileinto "exists-size-6"; }
if not exists "auto-submitted" { fileinto "exists-size-7"; }
if anyof (exists "x-spam-score", header :contains "subject" "plans") { fileinto "exists-size-8"; }
if allof (exists "x-flag", header :is "x-flag" "two") { fileinto "exists-size-9"; }
if true { fileinto "exists-size-10"; }
if not false { fileinto "exists-size-11"; }
