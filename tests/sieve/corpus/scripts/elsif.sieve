require ["fileinto"];
if header :contains "subject" "report" { fileinto "a"; }
elsif header :contains "subject" "BUY" { fileinto "b"; }
elsif header :contains "subject" "plans" { fileinto "c"; }
else { fileinto "d"; }
