require ["enotify"];
notify :from "bob@example.net" :importance "3" :options ["x-y=1"] :message "hi" "mailto:a@example.org?cc=b@example.org";
