require ["vacation"];
vacation :days 3 :subject "Out of office" :from "bob@example.net" :addresses ["bob@example.net", "bob+lists@example.net"] "I am away until Monday.";
