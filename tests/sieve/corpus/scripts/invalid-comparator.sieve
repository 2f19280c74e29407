if header :comparator "i;nonsense" :is "a" "b" { keep; }
