if header :is ["a", ] "b" { keep; }
