if true { keep; } else { keep; } elsif true { keep; }
