require ["vacation-seconds", "fileinto"];
if header :contains "subject" "report" { fileinto "Reports"; }
vacation :seconds 3600 :handle "h1" "Back soon.";
