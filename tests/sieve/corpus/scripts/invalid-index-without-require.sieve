if header :index 1 "a" "b" { keep; }
