require ["reject", "copy"];
reject "no";
redirect :copy "a@example.org";
