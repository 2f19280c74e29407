require ["fileinto"];
if header :contains "subject" "BUY" { discard; stop; }
if exists "auto-submitted" { fileinto "Auto"; stop; }
fileinto "Rest";
