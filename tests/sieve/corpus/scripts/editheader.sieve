require ["editheader", "fileinto", "index"];
addheader "X-Sieve" "filtered";
if header :is "x-sieve" "filtered" { fileinto "added"; }
deleteheader "subject";
if not exists "subject" { fileinto "deleted"; }
deleteheader :index 2 "x-flag";
if header :index 2 :is "x-flag" "three" { fileinto "idx-deleted"; }
deleteheader :contains "x-flag" "on";
if not header :is "x-flag" "one" { fileinto "value-deleted"; }
addheader :last "X-Last" "end";
deleteheader "received";
if exists "received" { fileinto "received-protected"; }
