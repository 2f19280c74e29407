require ["enotify", "variables"];
if header :matches "subject" "*" {
    notify :importance "1" :message "New: ${1}" "mailto:pager@example.org";
}
if valid_notify_method "mailto:a@example.org" { notify "mailto:b@example.org?subject=hi"; }
if not valid_notify_method "xmpp:a@example.org" { notify "mailto:c@example.org"; }
if notify_method_capability "mailto:a@example.org" "online" "maybe" { notify "mailto:d@example.org"; }
