require ["fileinto"];
keep;
fileinto "INBOX";
fileinto "Other";
fileinto "Other";
