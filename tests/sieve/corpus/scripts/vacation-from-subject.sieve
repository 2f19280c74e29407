require ["vacation", "variables"];
if header :matches "subject" "*" { set "s" "${1}"; }
vacation :subject "Re: ${s}" :from "Bob <bob@example.net>" :days 2 "I saw: ${s}";
