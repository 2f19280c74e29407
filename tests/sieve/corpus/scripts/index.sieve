require ["fileinto", "index", "date", "variables"];
if header :index 1 :is "x-flag" "one" { fileinto "i1"; }
if header :index 2 :is "x-flag" "two" { fileinto "i2"; }
if header :index 1 :last :is "x-flag" "three" { fileinto "last1"; }
if header :index 4 :is "x-flag" "one" { fileinto "never"; }
if header :index 2 :is "subject" "second subject" { fileinto "subj2"; }
if date :index 2 :zone "+0000" :is "received" "hour" "06" { fileinto "rcv2"; }
if date :index 1 :last :zone "+0000" :is "received" "date" "2026-11-30" { fileinto "rcvlast"; }
if address :index 1 :last :is "to" "carol@example.org" { fileinto "addrlast"; }
