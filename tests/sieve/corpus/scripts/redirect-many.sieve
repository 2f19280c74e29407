redirect "a@example.org";
redirect "b@example.org";
redirect "c@example.org";
redirect "a@example.org";
