require ["copy"];
if address :domain :is "from" "example.com" { redirect "archive@example.org"; }
redirect :copy "copy@example.org";
redirect "archive@example.org";
