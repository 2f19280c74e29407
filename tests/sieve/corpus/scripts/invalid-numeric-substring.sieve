require "comparator-i;ascii-numeric";
if header :comparator "i;ascii-numeric" :contains "a" "1" { keep; }
