require ["fileinto", "reject"];
fileinto "A";
reject "no";
